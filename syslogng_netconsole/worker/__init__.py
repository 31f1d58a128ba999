"""The detection worker: a process the netconsole() source starts to run the crash
detector on another core (see __main__.py and sng/detect_worker.py)."""
