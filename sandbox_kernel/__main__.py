"""`python -m sandbox_kernel -f CONNECTION_FILE` launches the sandbox kernel."""

import os
import sys

if __name__ == "__main__":
    # ipykernel imports debugpy, which warns on the terminal about frozen modules; this
    # kernel never debugs locally (it offers no debugger), so the check is noise.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # httpx imports its command-line tool when click and rich are installed (a fifth of this
    # kernel's import time); the kernel never runs it, and httpx does without on ImportError.
    sys.modules.setdefault("httpx._main", None)
    from .client.settings import chooses_embedded

    if chooses_embedded(None) and not any("SandboxKernel.endpoint" in arg for arg in sys.argv):
        # No server named so far: start the embedded one now, while the kernel loads. A
        # config file that names an endpoint after all makes the kernel stop it again.
        from .local import begin_server

        begin_server()
    from .kernel import SandboxKernel
    from .kernel_app import launch

    launch(SandboxKernel)
