"""Each service and action name is spelled in one place, vla_perception/names.py.

The rest of the product (nodes, CLI, demo, config, launch files, benchmarks, scripts) takes it from there.

Tests are left out on purpose: they check the public names from the outside, as a user would type them.
So are the nodes' parameter files config/<node>.yaml: they are written from the code's declarations
(bringup/parameters.py, checked by test_parameter_sources.py), so they repeat the names by construction.
"""
import re
from pathlib import Path

from vla_perception import names

PACKAGE = Path(__file__).resolve().parents[1]
REPO = PACKAGE.parent
PRODUCT_FILES = [path for pattern, root in (("**/*.py", PACKAGE / "vla_perception"), ("*.py", REPO / "bench"),
                                            ("*.py", REPO / "scripts"), ("graph.yaml", PACKAGE / "config"),
                                            ("*.py", PACKAGE / "launch"))
                 for path in root.glob(pattern)]
NAMES_FILE = PACKAGE / "vla_perception" / "names.py"


def spelled(endpoint) -> re.Pattern:
    """The endpoint written out as a name: 'detector_node/detect' (any prefix), or '~/detect' in its node."""
    return re.compile(rf"['\"/](/?{endpoint.node}/{endpoint.name}|~/{endpoint.name})['\"]")


def test_the_product_files_are_found():
    assert NAMES_FILE in PRODUCT_FILES and PACKAGE / "config" / "graph.yaml" in PRODUCT_FILES
    assert len(PRODUCT_FILES) > 40


def test_every_service_and_action_name_is_spelled_only_in_names_py():
    offenders = {}
    for endpoint in (*names.SERVICES, *names.ACTIONS):
        pattern = spelled(endpoint)
        found = [str(path.relative_to(REPO)) for path in PRODUCT_FILES
                 if path != NAMES_FILE and pattern.search(path.read_text())]
        if found:
            offenders[endpoint.relative] = found
    assert offenders == {}


def test_the_check_finds_a_name_written_out():
    assert spelled(names.DETECT).search('client = node.create_client(Detect, "/detector_node/detect")')
    assert spelled(names.DETECT).search('self.create_service(Detect, "~/detect", self._detect)')
    assert not spelled(names.DETECT).search('"/detector_node/detections"')


def test_endpoint_forms():
    assert (names.PICK.private, names.PICK.relative, names.PICK.absolute) == (
        "~/pick", "grasp_orchestrator/pick", "/grasp_orchestrator/pick")
