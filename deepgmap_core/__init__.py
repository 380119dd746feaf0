"""DeepGMAP: deep learning on genome sequence labelled with epigenomic peaks.

The core library shared by the suite's command-line tools and Galaxy wrappers.
"""

__version__ = "0.1.0"
