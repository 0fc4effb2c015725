"""What a run leaves behind and shows: results on disk, JUnit, HTML, tables, progress."""
