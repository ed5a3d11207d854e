"""Where a cell runs, decided without a kernel: `%sbx` locally, everything else in the sandbox."""

from __future__ import annotations

import pytest

from sandbox_kernel.kernel.routing import MixedCellError, Route, route, statement_lines


@pytest.mark.parametrize(
    "code",
    [
        "%sbx status",
        "  %sbx status  ",
        "%sbx status\n\n# where am I?\n%sbx status",
        "%%sbx status\nprint('the body belongs to the magic')",
        "%config SandboxKernel.timeout = 600",
        "%config SbxMagics",
        "%config SandboxKernel.timeout = 60\n%sbx status",
    ],
)
def test_sbx_and_own_config_lines_run_locally(code):
    assert route(code) is Route.LOCAL


@pytest.mark.parametrize("code", ["", "   \n\t\n", "# just a note\n   # another"])
def test_blank_and_comment_only_cells_stay_local(code):
    assert route(code) is Route.LOCAL


@pytest.mark.parametrize(
    "code",
    [
        "print('hi')",
        "%timeit sum(range(10))",
        "!echo hi",
        "%matplotlib inline\nimport matplotlib",
        "%config InlineBackend.figure_format = 'svg'",
        "%%time\nsum(range(10))",
        "%sbxother",
        "x = 1  # %sbx status",
        "sbx = 1",
    ],
)
def test_other_code_and_magics_run_in_the_sandbox(code):
    assert route(code) is Route.REMOTE


@pytest.mark.parametrize(
    "code",
    [
        "%sbx status\nx = 1",
        "x = 1\n%sbx status",
        "%config SandboxKernel.timeout = 60\nimport os",
        "for i in range(2):\n    %sbx status",
    ],
)
def test_cell_mixing_sbx_lines_and_code_is_refused_with_the_reason(code):
    with pytest.raises(MixedCellError, match="mixes %sbx lines with code"):
        route(code)


@pytest.mark.parametrize(
    "code",
    [
        'help_text = """\n%sbx status\n"""',
        "def f():\n    '''Call it like this:\n    %sbx status\n    '''\n    return 1",
        "values = (\n    1,\n)\nprint(values)",
    ],
)
def test_sbx_text_inside_a_string_is_not_a_magic(code):
    assert route(code) is Route.REMOTE


def test_untokenizable_cell_is_still_routed_line_by_line():
    assert route("!echo it's here") is Route.REMOTE
    with pytest.raises(MixedCellError):
        route("%sbx status\n!echo it's here")


def test_statement_lines_skip_blank_comment_and_continuation_lines():
    code = "# note\nx = [\n    1,\n]\n\n%sbx status\ns = '''\n%sbx\n'''"
    assert statement_lines(code) == ["x = [", "%sbx status", "s = '''"]


@pytest.mark.parametrize("code", ["entries = %sbx ls /home/user", "first, rest = %sbx ps"])
def test_an_assignment_from_a_sbx_line_runs_locally(code):
    assert route(code) is Route.LOCAL
