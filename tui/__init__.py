"""The Textual operator terminal (`dolphin tui`): app, one widget module per panel, bus→UI state."""
