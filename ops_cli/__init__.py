"""`ops`: the OneSift operations CLI (Typer, one module per noun)."""
