"""Rendering: the replay report (``report.html``, its SVG charts, the text tables) and the
drawing primitives ``tune``'s page shares (``svg``, ``legend``). It reads replay's results
and imports nothing of ``tune``, ``fleet`` or the commands above it."""
