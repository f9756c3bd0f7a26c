"""Packaging for nnunet-dyntransnet.

Besides the packages, the install writes two start-up files into site-packages so that
nnU-Net's own commands find the DynTransNet trainers with no set-up: at interpreter start they
append the trainer folder to ``nnUNet_extTrainer`` (see ``nnunet_dyntransnet/trainer_search_path.py``).

* ``nnunet_dyntransnet_trainers.start`` (PEP 829): one entry point, ``module:callable``. Python
  3.15 and later run it, and ignore the ``import`` line of the ``.pth`` of the same name.
* ``nnunet_dyntransnet_trainers.pth``: the same call as an ``import`` line, for Python before
  3.15 (PEP 829 ignores such lines from 3.18 on, where the ``.start`` file does the work).

Regular installs get both through ``build_py``; editable installs through ``editable_wheel``.
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

STARTUP_NAME = "nnunet_dyntransnet_trainers"
STARTUP_FILES = {
    # site.py executes .pth lines that start with "import" (before Python 3.18)
    f"{STARTUP_NAME}.pth": "import nnunet_dyntransnet.trainer_search_path as _dtn; _dtn.register()\n",
    # PEP 829 entry point, resolved with pkgutil.resolve_name and called without arguments
    f"{STARTUP_NAME}.start": "nnunet_dyntransnet.trainer_search_path:register\n",
}


def _write_startup_files(folder):
    paths = []
    for name, text in STARTUP_FILES.items():
        paths.append(os.path.join(folder, name))
        with open(paths[-1], "w", encoding="utf-8") as f:
            f.write(text)
    return paths


class BuildPyWithPth(build_py):
    """Puts the start-up files next to the packages, i.e. at the root of the wheel (site-packages)."""

    def run(self):
        super().run()
        _write_startup_files(self.build_lib)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, n) for n in STARTUP_FILES]


class EditableWheelWithPth(editable_wheel):
    """Adds the start-up files to the editable wheel's root, beside setuptools' own __editable__ files.

    setuptools has no public hook for extra top-level files in an editable wheel;
    ``_install_namespaces`` writes into that root and exists since setuptools 64. The test
    ``tests/test_install.py`` installs in both modes and fails if this stops working.
    """

    def _install_namespaces(self, installation_dir, pth_prefix):
        super()._install_namespaces(installation_dir, pth_prefix)
        _write_startup_files(installation_dir)


setup(
    name="nnunet-dyntransnet",
    version="0.1.0",
    description="DynTransNet (dynamic-bias transformer U-Net for liver and liver-tumor segmentation) as an nnU-Net v2 plugin",
    long_description=open("README.md", encoding="utf-8").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=["nnunet_dyntransnet", "nnunet_dyntransnet.network", "nnunet_dyntransnet.dataset_conversion",
              "nnunet_dyntransnet.evaluation", "nnunet_dyntransnet.inference", "nnunet_dyntransnet.protocol",
              "nnunet_dyntransnet.utilities", "nnunet_dyntransnet.benchmark", "nnunet_dyntransnet.trainer_lookup",
              "nnunet_dyntransnet.plans", "nnunet_dyntransnet.trainers"],
    package_dir={"nnunet_dyntransnet": "nnunet_dyntransnet", "nnunet_dyntransnet.trainers": "trainers",
                 "nnunet_dyntransnet.plans": "plans"},
    install_requires=[
        "nnunetv2>=2.8.1,<2.9",
        "torch>=2.3",
        "dynamic-network-architectures>=0.4,<0.5",
        "timm>=1.0",
        "batchgenerators>=0.25",
        "SimpleITK>=2.2",
        "acvl-utils>=0.2",
        "scipy>=1.10",
        "matplotlib>=3.5",
        "nibabel>=5",  # volume_io reads NIfTI voxels a second time (SimpleITK zero-fills truncated files)
        "tqdm>=4",  # the converters' and the phantom's progress bars
    ],
    extras_require={
        # pytest-xdist: the suite runs on two workers (pyproject.toml), one file per worker; filelock: they
        # plan the shared test dataset once (tests/conftest.py)
        "test": ["pytest>=7", "pytest-xdist>=3", "filelock>=3"],
        # the paper's baselines (Tables 4/5); MONAI 1.5 pinned torch < 2.7
        "baselines": ["monai>=1.6", "segmentation-models-pytorch>=0.3"],
        # ONNX export (torch's dynamo exporter needs onnxscript) and the onnxruntime predictor
        "onnx": ["onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"],
    },
    entry_points={
        "console_scripts": [
            "dyntransnet_convert_lits = nnunet_dyntransnet.dataset_conversion.cli:convert_lits_entry",
            "dyntransnet_convert_atlas = nnunet_dyntransnet.dataset_conversion.cli:convert_atlas_entry",
            "dyntransnet_make_phantom = nnunet_dyntransnet.dataset_conversion.phantom:main",
            "dyntransnet_demo = nnunet_dyntransnet.demo:main",
            "dyntransnet_benchmark = nnunet_dyntransnet.benchmark:entry",
            "dyntransnet_report = nnunet_dyntransnet.evaluation.cli:main",
            "dyntransnet_plan_and_preprocess = nnunet_dyntransnet.plans.cli:main",
            "dyntransnet_export_onnx = nnunet_dyntransnet.inference.export:main",
            "dyntransnet_predict_onnx = nnunet_dyntransnet.inference.predict:main",
            "dyntransnet_protocol = nnunet_dyntransnet.protocol.cli:main",
        ]
    },
    cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth},
)
