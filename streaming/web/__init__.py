"""Static files of the browser caption page (served by streaming.api.web)."""
