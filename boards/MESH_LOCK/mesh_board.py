# Frozen into the MESH_LOCK firmware only (boards/MESH_LOCK/manifest.py); stock MicroPython has no such
# module, and `make deploy` never copies it, so `import mesh_board` succeeding means "this is our image".
#
# ADV_NONCONN: this image carries boards/patches/0001-nimble-nonconn-adv.patch, so
# gap_advertise(..., connectable=False) with no scan-response data sends ADV_NONCONN_IND, the PDU type that
# Zephyr and BlueZ provisioners expect for the Unprovisioned Device beacon and PB-ADV (stock MicroPython sends
# ADV_SCAN_IND there: upstream issue 18480). The firmware reads it as
#     try:
#         from mesh_board import ADV_NONCONN
#     except ImportError:  # stock firmware
#         ADV_NONCONN = False
ADV_NONCONN = True
BOARD = "MESH_LOCK"
MICROPYTHON = "v1.28.0"  # the tag the patch is made and checked against (docs/deploy.md)
