"""`python -m sandbox_kernel -f CONNECTION_FILE` launches the sandbox kernel."""

from ipykernel.kernelapp import IPKernelApp

from .kernel import SandboxKernel

if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=SandboxKernel)
