"""Is an incident news? (issue 13) Decided when it is stored, from what the store
and the host table knew before it:

  new              no earlier incident of its signature in this store: the first
                   time the fleet shows this bug
  new_on_release   its release is known; no earlier incident of the signature on that
                   release nor on any other; and the fleet runs other releases too
                   (hosts seen on them, or incidents): a candidate regression of this
                   release. A fleet on one release has nothing to compare: new only.

Pure but for the two read-only queries it is given.
"""

from typing import Callable, Optional


def judge(inc, seen_before: Callable[[str, Optional[str]], dict],
          other_releases: Callable[[str], int]) -> None:
    """Set inc.new and inc.new_on_release. `seen_before(signature, release)` is
    store.seen_before (whether: 1 or 0); `other_releases(release)` the number of other
    releases the fleet is known to run."""
    seen = seen_before(inc.signature, inc.release)
    inc.new = seen["any"] == 0
    inc.new_on_release = bool(inc.release) and seen["this_release"] == 0 \
        and seen["other_releases"] == 0 and other_releases(inc.release) > 0
