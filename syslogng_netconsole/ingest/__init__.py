"""Bytes in, Records out: the wire format, reassembly per sender stream, captures and text input."""
