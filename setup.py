from setuptools import find_packages, setup


def read_version():
    with open("deepgmap_core/__init__.py") as handle:
        for line in handle:
            if line.startswith("__version__"):
                return line.split('"')[1]
    raise RuntimeError("no __version__ in deepgmap_core/__init__.py")


setup(
    name="deepgmap",
    version=read_version(),
    description="DeepGMAP: deep learning on genome sequence labelled with epigenomic peaks, as a Galaxy tool suite",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["deepgmap_core", "deepgmap_core.*"]),
    install_requires=[
        "numpy>=2.0",
        "pysam>=0.22",
        "macs3>=3.0",
        "matplotlib>=3.7",
        "keras>=3.0",
        "scikit-learn>=1.3",
        "pyBigWig>=0.3.22",
        "memelite>=0.5",
        "logomaker>=0.8",
        "h5py>=3.8",
        "modisco-lite>=3.0",
    ],
    extras_require={
        # A Keras backend: TensorFlow (CPU-only build for machines without a GPU), or JAX/PyTorch.
        "tensorflow": ["tensorflow>=2.16"],
        "cpu": ["tensorflow-cpu>=2.16"],
        "test": ["pytest>=8", "pybedtools>=0.10", "deeptools>=3.5", "biopython>=1.80"],
    },
    entry_points={
        "console_scripts": [
            "deepgmap-attribute = deepgmap_core.cli.attribute:main",
            "deepgmap-bam-to-peaks = deepgmap_core.cli.bam_to_peaks:main",
            "deepgmap-discover-motifs = deepgmap_core.cli.discover_motifs:main",
            "deepgmap-make-training-windows = deepgmap_core.cli.make_training_windows:main",
            "deepgmap-merge-bigwigs = deepgmap_core.cli.merge_bigwigs:main",
            "deepgmap-motif-extract = deepgmap_core.cli.motif_extract:main",
            "deepgmap-predict-bigwig = deepgmap_core.cli.predict_bigwig:main",
            "deepgmap-score-variants = deepgmap_core.cli.score_variants:main",
            "deepgmap-train-model = deepgmap_core.cli.train_model:main",
        ],
    },
)
