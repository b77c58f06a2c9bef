"""Do the image knobs parse: KGAHP_DEFAULT_IMAGE and KGAHP_HELPER_IMAGE as image references as
container runtimes read them, each KGAHP_ALLOWED_IMAGES pattern able to match an image, and the
default image among the allowed.
"""

from __future__ import annotations

import re
from typing import Optional

from kgahp.check_local.result import FAIL, OK, Result
from kgahp.config import PREFIX, Settings

# A container image reference as container runtimes parse it (the distribution reference
# grammar): [host[:port]/]path[:tag][@digest], path components lower-case.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_IMAGE = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*"
                    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
                    r":[0-9a-fA-F]{32,})?")


def image_problem(image: str) -> Optional[str]:
    if not image or image != image.strip() or any(c.isspace() for c in image):
        return "contains white space or is empty"
    if not _IMAGE.fullmatch(image):
        return "is not an image reference ([registry/]path[:tag][@digest], path in lower case)"
    return None


def pattern_example(pattern: str) -> str:
    """An image a shell-style pattern matches, to see whether it can match any image at all."""
    text = re.sub(r"\[[^\]]*\]", "a", pattern)
    return text.replace("*", "x").replace("?", "a")


def check_images(settings: Settings) -> list[Result]:
    import fnmatch

    problems: list[str] = []
    for pattern in settings.pod.allowed_images:
        if pattern_example(pattern) and image_problem(pattern_example(pattern)):
            problems.append(f"{PREFIX}ALLOWED_IMAGES pattern {pattern!r} can match no image "
                            f"(e.g. {pattern_example(pattern)!r} "
                            f"{image_problem(pattern_example(pattern))})")
    for knob, image in (("DEFAULT_IMAGE", settings.pod.default_image),
                        ("HELPER_IMAGE", settings.transfer.helper_image)):
        if not image:
            continue
        why = image_problem(image)
        if why:
            problems.append(f"{PREFIX}{knob} = {image!r} {why}")
    default = settings.pod.default_image
    if default and not any(fnmatch.fnmatchcase(default, p) for p in settings.pod.allowed_images):
        problems.append(f"{PREFIX}DEFAULT_IMAGE = {default!r} matches none of "
                        f"{PREFIX}ALLOWED_IMAGES ({', '.join(settings.pod.allowed_images)})")
    if problems:
        return [Result("images", FAIL, "; ".join(problems),
                       f"correct {PREFIX}ALLOWED_IMAGES / {PREFIX}DEFAULT_IMAGE / "
                       f"{PREFIX}HELPER_IMAGE")]
    return [Result("images", OK, f"{len(settings.pod.allowed_images)} allowed-image pattern(s) "
                   f"parse; default image {default or '(none: jobs must name one)'}")]
