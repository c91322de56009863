"""Page preparation: deskew angle, speckle detection, the pixel guard, character error rate."""

import pytest
from PIL import Image

from normalizer.ocr import images
from normalizer.ocr.quality import character_error_rate
from tests.peers import scans


@pytest.mark.parametrize("angle", [-3.0, 2.0, 4.5])
def test_deskew_finds_the_angle_a_page_was_turned(angle: float) -> None:
    page = scans.render_page(scans.FRENCH_LETTER, angle=angle, noise=0.0)
    assert images.estimate_skew(page) == pytest.approx(-angle, abs=0.3)


def test_straight_page_is_left_alone() -> None:
    page = scans.render_page(scans.FRENCH_LETTER, angle=0.0, noise=0.0)
    _, applied = images.deskew(page)
    assert applied == 0.0


def test_speckled_page_is_told_from_a_clean_one() -> None:
    clean = scans.render_page(scans.FRENCH_LETTER, angle=0.0, noise=0.0)
    noisy = scans.render_page(scans.FRENCH_LETTER, angle=0.0, noise=0.01)
    assert images.speckle_ratio(clean) < images.SPECKLE_THRESHOLD < images.speckle_ratio(noisy)


def test_600_dpi_page_is_brought_to_300_dpi() -> None:
    page = Image.new("L", (4960, 7016), 255)
    assert images.normalize_resolution(page, 600).size == (2480, 3508)


def test_image_over_the_pixel_cap_is_refused_from_its_header(tmp_path) -> None:
    path = scans.huge_png(tmp_path / "huge.png", side=20_000)
    with pytest.raises(images.ImageRefused) as caught:
        list(images.open_frames(path, max_pages=5, max_pixels=40_000_000))
    assert caught.value.code == "too_many_pixels"


def test_cer_counts_edits_against_the_truth_length() -> None:
    assert character_error_rate("bonjour", "bonjour") == 0.0
    assert character_error_rate("bonjoir", "bonjour") == pytest.approx(1 / 7)


def test_cer_ignores_case_and_whitespace_runs() -> None:
    assert character_error_rate("Bonjour  le\nmonde", "bonjour le monde") == 0.0
