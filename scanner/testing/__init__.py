"""Real test doubles for the scanner's surroundings: a DNS server that answers on the wire.

Nothing here fakes a Python API: every helper is a real process or socket that the
scanner talks to exactly as it talks to the world. The demo uses them too.
"""
