"""Episodes: the data model (SPEC §1), the on-disk store and training windows."""

from habc.episodes.episode import Controller, Episode, EpisodeSource
from habc.episodes.store import EpisodeStore, StoreArrays

__all__ = ["Controller", "Episode", "EpisodeSource", "EpisodeStore", "StoreArrays"]
