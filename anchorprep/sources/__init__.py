"""Anchor sources, by kind of input: alignments (`alignments`), audio and VAD (`audio`, `vad`),
accelerometers (`accel`), Kaldi data files (`kaldi`), shared text helpers (`text`), and the item
tables the pipelines run on (`items`)."""
