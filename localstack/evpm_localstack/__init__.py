"""Host-mode plugins that let the LocalStack community core run evpm without Docker."""
