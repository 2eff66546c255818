"""Downstream instrument recognition (OpenMIC-2018, IRMAS) and linear probes.

Not built yet: tracked by the downstream and export issues. It will reuse `runtime.loop.fit`,
the corpora pipeline and the encoders registry; nothing here is importable as a feature yet.
"""
