"""Anchor sources: forced alignments, VAD onsets, accelerometer peaks, and the audio they describe."""
