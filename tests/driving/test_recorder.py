"""Rollout videos: the recorder writes MP4 and GIF files that read back frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from deepapps import InputError
from deepapps_driving.controllers import LaneKeepingExpert
from deepapps_driving.episode import run_episode
from deepapps_driving.recorder import check_record_path, write_video


@pytest.fixture(scope="module")
def frames():
    log = run_episode("lane-keeping", LaneKeepingExpert(), "narrow", 1_000_000, record=True, max_steps=12)
    assert len(log.frames) == 13
    return log.frames


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_is_playable(tmp_path, frames, suffix):
    import imageio.v2 as imageio

    path = write_video(frames, tmp_path / f"episode{suffix}", fps=10)
    back = [f for f in imageio.get_reader(str(path)).iter_data()]
    assert len(back) == len(frames)
    assert back[0].shape[:2] == (
        frames[0].shape[0] - frames[0].shape[0] % 2,
        frames[0].shape[1] - frames[0].shape[1] % 2,
    )
    # the overlay band on top is dark, the road below is not
    assert np.mean(back[0][:10]) < 60 and np.mean(back[0][-60:]) > 60


def test_record_path_is_checked():
    with pytest.raises(InputError, match=".mp4 or .gif"):
        check_record_path("clip.avi")
