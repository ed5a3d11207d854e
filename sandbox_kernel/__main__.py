"""`python -m sandbox_kernel -f CONNECTION_FILE` launches the sandbox kernel."""

import os

if __name__ == "__main__":
    # ipykernel imports debugpy, which warns on the terminal about frozen modules; this
    # kernel never debugs locally (it offers no debugger), so the check is noise.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    from .kernel import SandboxKernel
    from .kernel_app import launch

    launch(SandboxKernel)
