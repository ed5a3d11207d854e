"""`python -m sandbox_kernel -f CONNECTION_FILE` launches the sandbox kernel."""

from .kernel import SandboxKernel
from .kernel_app import launch

if __name__ == "__main__":
    launch(SandboxKernel)
