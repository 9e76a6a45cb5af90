// _mesh_p256: P-256 scalar multiplication for the MESH_LOCK firmware, on the mbedTLS that the image already
// links for TLS. lib/mesh/p256.py uses it when present and falls back to its pure-Python code otherwise
// (stock firmware, the PyPI unix port, CPython). docs/performance.md has the figures, docs/deploy.md the build.
//
// Only the curve arithmetic lives here: key validation (§5.4.2.3), the private-key range and the cooperative
// wrapper stay in Python, so both paths answer bad input the same way. This module checks again anyway and
// raises ValueError rather than compute on a bad point.
//
// mbedTLS 3.x wants a random generator for mbedtls_ecp_mul (it randomises the projective coordinates
// against side channels). It gets SHA-256(seed || counter) with seed = SHA-256(private key || peer key), as
// RFC 6979 derives its nonce: unpredictable to anyone without the private key, and it draws nothing from the
// caller's random source (whose draws the protocol and the tests count).
// Every mbedTLS object is freed (and zeroised) before an exception is raised: nlr_jump would skip the frees.

#include <string.h>

#include "py/mperrno.h"
#include "py/runtime.h"

#include "mbedtls/ecp.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/sha256.h"

typedef struct {
    uint8_t seed[32];
    uint32_t counter;
} blind_rng_t;

static int blind_rng(void *ctx, unsigned char *out, size_t len) {
    blind_rng_t *r = ctx;
    uint8_t in[36], block[32];
    int ret = 0;
    while (len && ret == 0) {
        memcpy(in, r->seed, 32);
        in[32] = (uint8_t)(r->counter >> 24);
        in[33] = (uint8_t)(r->counter >> 16);
        in[34] = (uint8_t)(r->counter >> 8);
        in[35] = (uint8_t)r->counter;
        r->counter++;
        ret = mbedtls_sha256(in, sizeof(in), block, 0);
        size_t n = len < 32 ? len : 32;
        memcpy(out, block, n);
        out += n;
        len -= n;
    }
    mbedtls_platform_zeroize(in, sizeof(in));  // the seed derives from the private key
    mbedtls_platform_zeroize(block, sizeof(block));
    return ret;
}

static const uint8_t *arg_bytes(mp_obj_t obj, size_t len, const char *what) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(obj, &buf, MP_BUFFER_READ);
    if (buf.len != len) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be %d bytes"), what, (int)len);
    }
    return buf.buf;
}

// out65 = private * (peer if peer64 else G), uncompressed (0x04 || X || Y). 0, or which argument is bad.
enum { OK, BAD_PRIVATE, BAD_PEER, FAILED };

static int mul(const uint8_t *private32, const uint8_t *peer64, uint8_t *out65) {
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q, r;
    mbedtls_mpi d;
    blind_rng_t rng;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_ecp_point_init(&r);
    mbedtls_mpi_init(&d);
    rng.counter = 0;
    int status = FAILED;
    size_t olen;
    mbedtls_sha256_context sha;
    mbedtls_sha256_init(&sha);
    int ret = mbedtls_sha256_starts(&sha, 0);
    ret = ret ? ret : mbedtls_sha256_update(&sha, private32, 32);
    ret = ret ? ret : (peer64 ? mbedtls_sha256_update(&sha, peer64, 64) : 0);
    ret = ret ? ret : mbedtls_sha256_finish(&sha, rng.seed);
    mbedtls_sha256_free(&sha);
    if (ret != 0) {
        goto done;
    }
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0) {
        goto done;
    }
    if (mbedtls_mpi_read_binary(&d, private32, 32) != 0 || mbedtls_ecp_check_privkey(&grp, &d) != 0) {
        status = BAD_PRIVATE;
        goto done;
    }
    if (peer64) {
        uint8_t enc[65];
        enc[0] = 0x04;
        memcpy(enc + 1, peer64, 64);
        if (mbedtls_ecp_point_read_binary(&grp, &q, enc, sizeof(enc)) != 0 || mbedtls_ecp_check_pubkey(&grp, &q) != 0) {
            status = BAD_PEER;
            goto done;
        }
    } else if (mbedtls_ecp_copy(&q, &grp.G) != 0) {
        goto done;
    }
    if (mbedtls_ecp_mul(&grp, &r, &d, &q, blind_rng, &rng) != 0
        || mbedtls_ecp_point_write_binary(&grp, &r, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, out65, 65) != 0
        || olen != 65) {
        goto done;
    }
    status = OK;
done:
    mbedtls_platform_zeroize(&rng, sizeof(rng));
    mbedtls_mpi_free(&d);
    mbedtls_ecp_point_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return status;
}

// The curve work touches no MicroPython object, so where the port has a GIL (the ESP32) it is released for
// those tens of milliseconds: the NimBLE host task can take it to hand the firmware's IRQ handler its events
// instead of waiting. Not where mbedTLS allocates from MicroPython's heap (MICROPY_TRACKED_ALLOC, e.g. the unix
// port, which has no GIL anyway); the ESP32's mbedTLS allocates from ESP-IDF's heap.
static int mul_unlocked(const uint8_t *private32, const uint8_t *peer64, uint8_t *out65) {
    #if MICROPY_PY_THREAD && MICROPY_PY_THREAD_GIL && !MICROPY_TRACKED_ALLOC
    MP_THREAD_GIL_EXIT();
    int status = mul(private32, peer64, out65);
    MP_THREAD_GIL_ENTER();
    return status;
    #else
    return mul(private32, peer64, out65);
    #endif
}

static void raise_for(int status) {
    if (status == BAD_PRIVATE) {
        mp_raise_ValueError(MP_ERROR_TEXT("private key out of range"));
    } else if (status == BAD_PEER) {
        mp_raise_ValueError(MP_ERROR_TEXT("public key not on P-256"));
    } else if (status != OK) {
        mp_raise_OSError(MP_EIO);
    }
}

// ecdh(private32, peer_public64) -> the 32-byte shared X coordinate
static mp_obj_t mesh_p256_ecdh(mp_obj_t private_in, mp_obj_t peer_in) {
    const uint8_t *private32 = arg_bytes(private_in, 32, "private key");
    const uint8_t *peer64 = arg_bytes(peer_in, 64, "public key");
    uint8_t out[65];
    int status = mul_unlocked(private32, peer64, out);
    if (status != OK) {
        mbedtls_platform_zeroize(out, sizeof(out));
        raise_for(status);
    }
    mp_obj_t x = mp_obj_new_bytes(out + 1, 32);
    mbedtls_platform_zeroize(out, sizeof(out));
    return x;
}
static MP_DEFINE_CONST_FUN_OBJ_2(mesh_p256_ecdh_obj, mesh_p256_ecdh);

// public_key(private32) -> X || Y (64 bytes)
static mp_obj_t mesh_p256_public_key(mp_obj_t private_in) {
    const uint8_t *private32 = arg_bytes(private_in, 32, "private key");
    uint8_t out[65];
    raise_for(mul_unlocked(private32, NULL, out));
    return mp_obj_new_bytes(out + 1, 64);
}
static MP_DEFINE_CONST_FUN_OBJ_1(mesh_p256_public_key_obj, mesh_p256_public_key);

static const mp_rom_map_elem_t mesh_p256_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__mesh_p256) },
    { MP_ROM_QSTR(MP_QSTR_ecdh), MP_ROM_PTR(&mesh_p256_ecdh_obj) },
    { MP_ROM_QSTR(MP_QSTR_public_key), MP_ROM_PTR(&mesh_p256_public_key_obj) },
};
static MP_DEFINE_CONST_DICT(mesh_p256_globals, mesh_p256_globals_table);

const mp_obj_module_t mesh_p256_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&mesh_p256_globals,
};

MP_REGISTER_MODULE(MP_QSTR__mesh_p256, mesh_p256_module);
