"""Live sources and a rolling visual-token memory for streaming question answering."""
