"""The ConsultEase kiosk: PySide6 only. Models adapt the core's plain state,
views draw, and a bridge carries listener events onto the GUI thread."""
