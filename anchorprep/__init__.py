"""anchorprep: corpus-scale anchors, shards, losses and metrics for Streaming Anchor Loss.

The pipelines are plain functions, each the library side of the CLI command of the same name::

    import anchorprep
    result = anchorprep.align("manifest.csv", "out/kw", keyword="hey computer")
    anchorprep.vad("manifest.csv", "out/onsets", onsets="first")

`align`, `vad`, `accel`, `merge` and `assemble` live in `anchorprep.pipeline.api` and are loaded
on first use, so ``import anchorprep.loss`` needs torch alone.
"""

from anchorprep.version import __version__

_PIPELINES = ("align", "vad", "accel", "merge", "assemble")
__all__ = ["__version__", *_PIPELINES]


def __getattr__(name: str):
    if name in _PIPELINES:
        from anchorprep.pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'anchorprep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PIPELINES])
