"""Static INT8 quantization of the shipped networks: kept for the commands that name this file;
the quantizer is :mod:`fakescope.training.quantize` (same arguments):

    PYTHONPATH=src python3 tools/quantize_detectors.py --store cache/faces_v2 \\
        --splits runs/sbi_v4/splits.json --out runs/int8 --models effnet_lite0_v4 --measure
"""

from fakescope.training.quantize import main

if __name__ == "__main__":
    main()
