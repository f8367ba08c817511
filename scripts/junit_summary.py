"""Print one 'tests: N passed, N failed, N skipped' line from colcon's JUnit XML results."""
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def summarise(result_dir: Path) -> tuple[int, int, int]:
    total = failed = skipped = 0
    for report in result_dir.rglob("*.xml"):
        root = ElementTree.parse(report).getroot()
        for suite in root.iter("testsuite"):
            total += int(suite.get("tests", 0))
            failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped += int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped


if __name__ == "__main__":
    passed, failed, skipped = summarise(Path(sys.argv[1]))
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed or passed == 0 else 0)
