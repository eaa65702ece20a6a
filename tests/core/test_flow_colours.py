"""The Middlebury optical-flow colour wheel of ``flow_to_colour(mode="middlebury")``.

Known answers: the colours below were checked once against torchvision 0.29.1's
``flow_to_image`` (the same convention; it matched to the 8-bit level on a random flow).
"""

from __future__ import annotations

import pytest
import torch

from analogy_core import FlowField, flow_to_colour
from analogy_core.field import middlebury_wheel


def colour(dx: float, dy: float, max_flow: float | None = 1.0) -> torch.Tensor:
    """The 0..255 colour of one flow vector."""
    flow = torch.zeros(1, 1, 2, 2)
    flow[0, 0, 0] = torch.tensor([dx, dy])
    rgb = flow_to_colour(FlowField(flow, (1, 2)), mode="middlebury", max_flow=max_flow)
    return rgb[0, :, 0, 0] * 255


def assert_levels(got: torch.Tensor, want: list[int]) -> None:
    """Within one 8-bit level (rounding of the last float digit may go either way)."""
    assert (got - torch.tensor(want, dtype=torch.float32)).abs().max() <= 1.0, (got.tolist(), want)


def test_the_wheel_has_55_colours_in_six_ramps() -> None:
    wheel = middlebury_wheel()
    assert wheel.shape == (55, 3)
    assert wheel.min() >= 0 and wheel.max() <= 1
    # ramp starts: red, yellow, green, cyan, blue, magenta (15, 6, 4, 11, 13, 6 steps)
    starts = [0, 15, 21, 25, 36, 49]
    assert wheel[starts].tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]]
    assert wheel[1].tolist() == pytest.approx([1.0, 17 / 255, 0.0])  # floor(255 * 1 / 15) = 17


@pytest.mark.parametrize(
    ("dx", "dy", "rgb"),
    [
        (1.0, 0.0, [255, 0, 0]),  # right: red
        (0.0, 1.0, [255, 229, 0]),  # down: orange-yellow
        (-1.0, 0.0, [0, 209, 255]),  # left: cyan-blue
        (0.0, -1.0, [88, 0, 255]),  # up: violet
        (0.5, 0.0, [255, 128, 128]),  # half the scale: halfway to white
        (2.0, 0.0, [191, 0, 0]),  # beyond the scale: full colour at 75 %
    ],
)
def test_known_colours(dx: float, dy: float, rgb: list[int]) -> None:
    assert_levels(colour(dx, dy), rgb)


def test_zero_flow_is_white_and_the_scale_is_automatic_without_max_flow() -> None:
    flow = torch.zeros(1, 2, 3, 2)
    flow[0, 0, 0] = torch.tensor([4.0, 0.0])  # longest flow: full colour
    flow[0, 1, 2] = torch.tensor([2.0, 0.0])  # half of it
    rgb = flow_to_colour(FlowField(flow, (2, 3)), mode="middlebury")
    assert_levels(rgb[0, :, 0, 0] * 255, [255, 0, 0])
    assert_levels(rgb[0, :, 1, 2] * 255, [255, 128, 128])
    assert rgb[0, :, 1, 1].tolist() == [1.0, 1.0, 1.0]


def test_opposite_directions_get_different_colours_all_round() -> None:
    angles = torch.linspace(0, 2 * torch.pi, 73)[:-1]
    flow = torch.stack((angles.cos(), angles.sin()), dim=-1).view(1, 1, -1, 2)
    rgb = flow_to_colour(FlowField(flow, (1, 72)), mode="middlebury", max_flow=1.0)[0, :, 0].T  # (72, 3)
    assert rgb.min() >= 0 and rgb.max() <= 1
    # every direction differs from its neighbours, and from the opposite direction by far
    assert (rgb - rgb.roll(1, 0)).abs().sum(1).min() > 0.01
    assert (rgb - rgb.roll(36, 0)).abs().sum(1).min() > 0.5


def test_bad_max_flow_is_refused() -> None:
    with pytest.raises(ValueError, match="max_flow must be > 0"):
        flow_to_colour(FlowField(torch.zeros(1, 1, 1, 2), (1, 1)), mode="middlebury", max_flow=-1.0)
