"""The console's pages, one module per area; each handler reads, calls a source, renders."""
