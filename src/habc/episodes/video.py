"""Camera streams as MP4 files, as LeRobot v3 stores ``video`` features.

LeRobot's defaults: AV1 (SVT-AV1 encoder) in yuv420p, a key frame every 2 frames, CRF 30. The
encoding is lossy: on Meta-World's corner2 camera a pixel channel moves by 3.5 of 255 on average
at 64x64 and 5.5 at 16x16, mostly from yuv420's halved colour resolution (CRF 10 gives 2.9).
Decoding uses PyAV's bundled FFmpeg (dav1d for AV1), so any LeRobot v3 dataset's videos read
without a system FFmpeg.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from habc.errors import StoreError

CODEC = "libsvtav1"
PIX_FMT = "yuv420p"
OPTIONS = {"g": "2", "crf": "30"}


def feature_info(height: int, width: int, fps: int) -> dict[str, Any]:
    """The ``info`` of a LeRobot ``video`` feature written by ``encode_frames``."""
    return {"video.height": height, "video.width": width, "video.codec": "av1",
            "video.pix_fmt": PIX_FMT, "video.is_depth_map": False, "video.fps": fps,
            "video.channels": 3, "has_audio": False}


def encode_frames(frames: npt.NDArray[np.uint8], fps: int, path: Path) -> None:
    """Write (N, H, W, 3) uint8 RGB frames as one MP4 stream, frame i at time i / fps.

    H and W must be even (yuv420p halves the chroma planes).
    """
    import av

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise StoreError(f"frames must be (N, H, W, 3) uint8, not {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise StoreError(f"video frames need an even height and width, not {frames.shape[1:3]}")
    os.environ.setdefault("SVT_LOG", "1")  # the encoder's banner: errors only
    with av.open(str(path), "w", format="mp4") as container:
        stream: Any = container.add_stream(CODEC, rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = PIX_FMT
        stream.options = OPTIONS
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def decode_frames(path: Path) -> npt.NDArray[np.uint8]:
    """Every frame of an MP4 file's video stream, in order: (N, H, W, 3) uint8 RGB.

    Raises:
        StoreError: naming the file, if it is missing or cannot be decoded.
    """
    import av

    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (OSError, av.error.FFmpegError) as e:
        raise StoreError(f"cannot decode video {path}: {e}") from e
    if not frames:
        raise StoreError(f"video {path} holds no frames")
    return np.stack(frames)


def episode_frames(file_frames: npt.NDArray[np.uint8], from_timestamp: float, length: int,
                   fps: int, path: Path) -> npt.NDArray[np.uint8]:
    """One episode's (length, H, W, 3) frames out of its file's frames.

    LeRobot v3 packs episodes one after another into a file; an episode starts at
    ``from_timestamp`` seconds, so at frame ``round(from_timestamp * fps)``.
    """
    start = round(from_timestamp * fps)
    if start < 0 or start + length > len(file_frames):
        raise StoreError(f"video {path} has {len(file_frames)} frames; an episode needs frames "
                         f"{start} to {start + length - 1}")
    return file_frames[start:start + length]
