"""Browser pages of training/: thin views that check access through selectors and call one service."""
