"""The embedded stand-ins: small corpora rendered from the General MIDI SoundFont that `pretty_midi`
ships, written in each real dataset's official layout so that the same readers read them.

They let every command run on a machine without the datasets (trying the toolkit, tests, CI), and
are used only when no real root is given (`corpora.corpus.find_root`), always said loudly: their
numbers say nothing about the real tasks. `soundfont` renders NSynth-format notes and holds what
the others share (the program map, ensembles, render-once caching); `openmic`, `irmas`, `tagged`
(FSD50K) and `folder` (class folders) render their datasets' layouts.
"""
