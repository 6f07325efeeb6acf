/*
 * Unit tests of image signature verification: policy.json loading and scope choice, the
 * signedIdentity rules, the signature payload, the OpenPGP verifier and the sigstore layer
 * check, with the known-answer vectors of the team's image-signatures reference (KAT 1: an
 * Ed25519 simple signature by Debian's skopeo; KAT 2: sigstore layers signed with OpenSSL;
 * KAT 3: a real cosign signature) and vectors made on this machine with gnupg 2.2.40 and
 * skopeo 1.9.3 (`skopeo standalone-sign` over the KAT 1 manifest as
 * 127.0.0.1:5000/test/app:v1 with an RSA-2048, a NIST P-256 and an Ed25519 signing-subkey key;
 * `gpg --sign` of the same payload with --default-sig-expire 1d, --digest-algo SHA1,
 * --textmode, --detach-sign, --store, --compress-algo none|zlib|bzip2, --symmetric).
 */
/* cmocka.h needs the standard headers before it. */
/* clang-format off */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

/* ---- vectors ---- */

/* KAT 1 (reference 7.3): the manifest (with its trailing newline), key and signature. */
#define KAT1_MANIFEST                                                                             \
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+"   \
        "json\",\"digest\":\"sha256:27a5220653622691d8715a7c0be4de39222bd05fb20f1de2f7f33aecd4a0" \
        "09e2\",\"size\":292},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1."   \
        "tar+gzip\",\"digest\":\"sha256:3e8154a6dc300fc8834cc9ff78c5b1fed1bdb51eaffc5ab0ec5746d9" \
        "5182cca5\",\"size\":114}]}\n"
#define KAT1_DIGEST "sha256:82d1529f1ae3ecc9c31bd37c376090bd007f397a43f1c21b07e71df4b4f53035"
#define KAT1_FPR    "3FA27B182245BDD8DCCD85CEA8969C3D5A9D1750"
#define KAT1_KEY                                                                       \
        "mDMEaxbXgBYJKwYBBAHaRw8BAQdAx0gRM2IEXPjRNCbG43ZgHUj5Z1FnRNzDL3vTHg0VJxu0KlVu" \
        "dHJ1c3RlZCBTaWduZXIgQiA8c2lnbmVyLWJAZXhhbXBsZS50ZXN0PoiQBBMWCAA4FiEEP6J7GCJF" \
        "vdjczYXOqJacPVqdF1AFAmsW14ACGwMFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AACgkQqJacPVqd" \
        "F1CmFQEAnbNmJLFfic5Ks4d/BImReCB/uTvifBhXKA6mZ2mSwWAA/2KC68aUf9+bZPeRYuLufhiM" \
        "iIRA3YfvMbNH0ZaduGsH"
#define KAT1_SIG                                                                       \
        "owFNUDssBFEUHawECdlqaSS8hEJY783b2WfGLwqFzidRoPDmzZv1rPmYfSuRzZSERrbS+EQUopGN" \
        "TiP0PokKiVYjFHrCTETILe7NzTn3nHvKjTVKXep4e3dwZq95vOrqct5U8qn7SgmwQEjB6BIwSkBY" \
        "3JVCrsaz5bE8D3oCbvOAu4wDAyCVpGFUyNAghL2SF2Qv9X1jBYGwGwiH5vg/pkNdYUeQHkvkohbx" \
        "CwtU1bJGn2ohTdVtRDnmjOkMI9PChGGShTo0LQiJjXVCM9hGTEUmJJwgy86YGVvDEGuxmFz1Y0dU" \
        "eo5gbcxzJRUuD9oKIudSWQx4DPJ8KTz35zUW8Agc/HG0tIrTCESnhBPZo44PDET0bFbTEdLDcKOY" \
        "UFJ1SmuqPTF8WGoBo+cPTzdrt78R1lbH8SkN9cnfzelOlXLwFY68VezHpvL2yt3g4tTYWGfi9PXs" \
        "6Gwo7FQPjUnlMzmfJsv9m+8TL/xj7uT6eXrr0SpPd1zsf3bNDiTX678B"
#define KAT1_PAYLOAD                                                                             \
        "{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/test/app:v1\"},"     \
        "\"image\":{\"docker-manifest-digest\":\"sha256:82d1529f1ae3ecc9c31bd37c376090bd007f397" \
        "a43f1c21b07e71df4b4f53035\"},\"type\":\"atomic container signature\"},\"optional\":{"   \
        "\"creator\":\"atomic 5.23.1\",\"timestamp\":1796659119}}"

/* KAT 2 (reference 7.4): sigstore payload, trusted key K1, foreign key K2. */
#define KAT2_DIGEST "sha256:36ce92bfa3594339818b68d2ce24c55dda5ab76aa94aaf1945299d74edfd1dbf"
#define KAT2_PAYLOAD                                                                             \
        "{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/test/cosigned:v1\"}" \
        ",\"image\":{\"docker-manifest-digest\":\"sha256:36ce92bfa3594339818b68d2ce24c55dda5ab7" \
        "6aa94aaf1945299d74edfd1dbf\"},\"type\":\"cosign container image signature\"},"          \
        "\"optional\":{\"creator\":\"containers/image 5.23.1\",\"timestamp\":1796659200}}"
#define KAT2_K1                                                              \
        "-----BEGIN PUBLIC KEY-----\n"                                       \
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETTp+ULNtrILUWrAzn1NDkvG++dGq\n" \
        "bC7DcLS5JObf6q5LIJqU1LR0WMPgSqYa8fp8P/6c+jw/vDoJx404tAVZAA==\n"     \
        "-----END PUBLIC KEY-----\n"
#define KAT2_K2                                                              \
        "-----BEGIN PUBLIC KEY-----\n"                                       \
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEuK1bHfNk62R0QcLF5c7onOecdrbI\n" \
        "UIgGg0S0d+QS24qRe4cSZ2/6aadBsYWiOrCgwhfc3kdar+AqQBfrIcaqxg==\n"     \
        "-----END PUBLIC KEY-----\n"
#define KAT2_SIG_K2                                               \
        "MEUCIEiWSzieQnRmRy4XrmSAA+Qc4Yooc1n7uHu4m5MPwnvFAiEA41+" \
        "l0poQr0N9aUBHZafsGpTyJjB25mLieyIPNnNmd"                  \
        "VI="
#define KAT2_SIG_K1                                                                        \
        "MEQCICoKo1nyvZ28KHGu68n52Gx49tIep4SejzsnBldOIJV5AiBbM9mZbucAkoe2agVwPZbG2D73geo/" \
        "dByzx5PBUsP1m"                                                                    \
        "g=="

/* KAT 3 (reference 7.5): a real cosign signature (containers/image test fixture). */
#define KAT3_KEY                                                             \
        "-----BEGIN PUBLIC KEY-----\n"                                       \
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFNLqFhf4fiN6o/glAuYnq2jYUeL0\n" \
        "vRuLu/z39pmbVwS9ff5AYnlwaP9sxREajdLY9ynM6G1sy6AAmb7Z63TsLg==\n"     \
        "-----END PUBLIC KEY-----\n"
#define KAT3_PAYLOAD                                                                             \
        "{\"critical\":{\"identity\":{\"docker-reference\":\"192.168.64.2:5000/cosign-signed-"   \
        "single-sample\"},\"image\":{\"docker-manifest-digest\":\"sha256:634a8f35b5f16dcf4aaa08" \
        "22adc0b1964bb786fca12f6831de8ddc45e5986a00\"},\"type\":\"cosign container image "       \
        "signature\"},\"optional\":null}"
#define KAT3_DIGEST "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
#define KAT3_SIG                                                                    \
        "MEYCIQDmtamqYPjMg81nqeBhptrPls44aA/r7PwLmspINJY4MwIhANKRpqe2E9UCBtGFdPoz/" \
        "8jAbaQm4uP4h+IpwKTE6Cl"                                                    \
        "R"

/* Made here (see the top comment); keys: RSA D0DB085F..., P-256 297A8ABD..., and a primary
 * 9D4E968E... whose signatures come from its Ed25519 signing subkey. */
#define RSA_FPR          "D0DB085FF5724BA18AAC57D10549900F5C0F8255"
#define P256_FPR         "297A8ABDCDAE505E55687F88DD438EDC79B5DABA"
#define EXPIRING_CREATED 1796665870
#define RSA_PUB                                                                        \
        "mQENBGsW8gUBCADzh4b4ty03REHwlkdC+gDVynVTOYaDh/D8D2DDMRsFcryIDeMlYdaj/S/9GOFh" \
        "R/hNrmCg3IuwWHsAEKGcWXh4vf/wiDhw0lKpD2UtNGNKGQyLdf/DmRcbzdRRBLaqRX0/+ye50v+8" \
        "XnQyz8RVBP6VEsu2z/Ri0PJ3xagVlKN2BTofgZLjE7sQSsGJ683baXjwl/PTExnAOlZMTnlnIVXQ" \
        "cAxRCJKlqa2deY2TdLCC+BLTblszLSdU4HMgEzkLxSxwubNN4oJjYnlOOcTUOiIxsfQREuVDlaST" \
        "erGce79dtBT+uVpBNvJ9GU/JPc52zypxoLM4VChED3U0LXYnCMs1ABEBAAG0G1Rlc3QgUlNBIDxy" \
        "c2FAZXhhbXBsZS50ZXN0PokBTgQTAQoAOBYhBNDbCF/1ckuhiqxX0QVJkA9cD4JVBQJrFvIFAhsD" \
        "BQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEAVJkA9cD4JVLPkIAOhQLmNuyyBwhJk5AOmVnOSW" \
        "F9XDX+No0XnmGOC6mNYhIOKdWWcZk4zM8/jyse9NJ7ebIHhN1t4lDcxHg6SRH5dw/gKnd9umPdT9" \
        "irYEnMRbRjuVGNHjyyq0ZxUvB4m80uXqSaUkm5MeSq+w2YV0I98pkTqByUDffiLvJJGQ4Y3kEToW" \
        "NFP5kBaeS67QfUJBtM/xWsmQhzsg1VQGBCOgxIw4FCB+hUnpZwKdVyi37XNoR5uqEmeGjg3HE6Kg" \
        "X0WKVsi/lbn/6IVHhkakrjc30TonRQvVbOd1dE5Is/UklcILlkIuUA9oe9Vs+DzJo8oX74MeqePG" \
        "IvKVCJ5qvM1edS8="
#define P256_PUB                                                                       \
        "mFIEaxbyBRMIKoZIzj0DAQcCAwQB64n5DGgTFOJ6+qFRYIm96DK8C//vC9vlKfpVMUXzm2+zk8H9" \
        "fqQ4rgIS9kuPIvmSzKftIjUxa9AlZMaNAR4ltB1UZXN0IFAyNTYgPHAyNTZAZXhhbXBsZS50ZXN0" \
        "PoiQBBMTCAA4FiEEKXqKvc2uUF5VaH+I3UOO3Hm12roFAmsW8gUCGwMFCwkIBwIGFQoJCAsCBBYC" \
        "AwECHgECF4AACgkQ3UOO3Hm12rprEAEA1KB2sRK8/CoWdZ5558TXnZE60NZn8xIQaiknWf4KlGMA" \
        "/1yJiN1+8QGRcIhr8MEazD7dlRD3kWzfJ9vY01aZ509g"
#define SUB_PUB                                                                        \
        "mDMEaxbyBRYJKwYBBAHaRw8BAQdATShNQ/eRXKTwwMW5Z65QpTlp4fJJ2R4cL1T/gL6w6Fa0G1Rl" \
        "c3QgU3ViIDxzdWJAZXhhbXBsZS50ZXN0PoiQBBMWCAA4FiEEnU6Wju51ScRvciCv1Xe1qa8FPPoF" \
        "AmsW8gUCGwEFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AACgkQ1Xe1qa8FPPqungD+P+oLny8F9hPg" \
        "P2vQgZ4zCTQPdjOyzOSMRZe3yAbS+hoA/3C3ZjEvKgjmjRiC54PgLDjy9yWDHTP8ztceNO0y43wK" \
        "uDMEaxbyDRYJKwYBBAHaRw8BAQdAHTp3NHipK86hOjL8+8CYHR5l0Z4hThl2oEZndqUe1xWI7wQY" \
        "FggAIBYhBJ1Olo7udUnEb3Igr9V3tamvBTz6BQJrFvINAhsCAIEJENV3tamvBTz6diAEGRYIAB0W" \
        "IQS4vPkUgR+LPvdcCcpy0zwvup+EQQUCaxbyDQAKCRBy0zwvup+EQbE1AQCt9XnBu3UeTDxQT3EP" \
        "uaV6ngvIN6la3t63XyWOkZ3hbwD/eVAsScv1SlUzsB6ow6YsN2KNuSPGE63OTy4XlLnp5QepEAEA" \
        "w7AKM7qBIEBUjeduYEQIhLw6Y9mN3u2b+EA2Uw0iWR0A/02/29UDi79KfFHmlznZ5HTxqTzpGxSZ" \
        "PTvPZx5pnPwO"
#define RSA_SIG                                                                        \
        "owGbwMvMwMXI6jmBP4a/KZTx9IGEJIZssU+81UrJRZklmcmJOUpW1UqZKal5JZkllSB2Sn5ydmqR" \
        "blFqWmpRal5yqpKVkqGRuZ4BEBpamRoYGOiXpBaX6CcWFFiVGSrV6ihl5iampyLpzE3My0wDKtFN" \
        "yUwHUkD9xRmJRqZmVhZGKYamRpZphompxqnJyZbJxoZJKcbmycbmZgaWBkkpBgbmacaW5okmxmmG" \
        "yUaGSQbmqeaGKWkmSSZppsYGxqYgy0oqC0AuSizJz81MVkjOzytJzMxLLVIozkzPSywpLUoFKcov" \
        "KMnMz4N4LbkoFai4CKHHVM/IWM9QCWhUZi7QeYm5BUpWhuaWZmZmphZmlrW1nYzGLAyMXAyyYoos" \
        "F25zxH8t8l7YtSb8IiwMWZlA4cfAxSkAE7ndyP6LqYHb5I3gtf9V66497GILvGg5I7vpY+at6kdJ" \
        "jzW/7zh/4sWzyNvscc++q3BvPHzJtM9voYyqods23nZn4+mXN5zf41f3XNJKKqq1myF1/7TzStO3" \
        "iai/V1aW+lnHd9exdVFV9Q4r/sU6jJZ3Jn/7kq344YFV3E/GPyJJ9ucsbyt2iwq/3GqZtKjV8EJb" \
        "97t+9fPCD7VeFLWe9LzfwJlzopvHaXr5poNJX2RVo18aC6/W/7J1Un6mxO2ybxOmWFRO0XfU45cs" \
        "+BtyR0F1mdfbTvWAlPDpqQvUzA12ronkbJzKu2DhJqeWz+bHP/+KmaTyqvdc/ksfrwDZy6bOXGfy" \
        "mlO/vzn78Z5CfeEBkRUA"
#define P256_SIG                                                                       \
        "owGbwMvMwCF817nvTuXWW7sYTx9ISGLIFvvEW62UXJRZkpmcmKNkVa2UmZKaV5JZUglip+QnZ6cW" \
        "6RalpqUWpeYlpypZKRkamesZAKGhlamBgYF+SWpxiX5iQYFVmaFSrY5SZm5ieiqSztzEvMw0oBLd" \
        "lMx0IAXUX5yRaGRqZmVhlGJoamSZZpiYapyanGyZbGyYlGJsnmxsbmZgaZCUYmBgnmZsaZ5oYpxm" \
        "mGxkmGRgnmpumJJmkmSSZmpsYGwKsqyksgDkosSS/NzMZIXk/LySxMy81CKF4sz0vMSS0qJUkKL8" \
        "gpLM/DyI15KLUoGKixB6TPWMjPUMlYBGZeYCnZeYW6BkZWhuaWZmZmphZllb21HKwiDMwSArpsii" \
        "WdW19+y6gLjQjPoOWBCyMoGCj4GLUwAm0iHB8N+7/DufQWte1JXiLTb7k3jOHcz8O6M6hXPd9atf" \
        "Ow2S5JkY/qlf5bqzIUOElZMhJD0z4fCN6R/TOfau7oqobHlrq7x23lMA"
#define SUB_SIG                                                                        \
        "owGbwMvMwCFWdNlGf9f8FkfG0wcSkhiyxT7xVislF2WWZCYn5ihZVStlpqTmlWSWVILYKfnJ2alF" \
        "ukWpaalFqXnJqUpWSoZG5noGQGhoZWpgYKBfklpcop9YUGBVZqhUq6OUmZuYnoqkMzcxLzMNqEQ3" \
        "JTMdSAH1F2ckGpmaWVkYpRiaGlmmGSamGqcmJ1smGxsmpRibJxubmxlYGiSlGBiYpxlbmieaGKcZ" \
        "JhsZJhmYp5obpqSZJJmkmRobGJuCLCupLAC5KLEkPzczWSE5P68kMTMvtUihODM9L7GktCgVpCi/" \
        "oCQzPw/iteSiVKDiIoQeUz0jYz1DJaBRmblA5yXmFihZGZpbmpmZmVqYWdbWdpSyMIhxMMiKKbLs" \
        "2PNTpFG+2+57DOcpWBCyMoGCj4GLUwAmcpOd4Z9pcdWis8+XijBvb8pvT7HRfJt4YNsz81nnv/mt" \
        "LOJef9WAkWFa9vWuoro6b6mCWcsmV21b96/08daN/ZOnHTESdkvdsIAbAA=="
#define EXPIRING_SIG                                                                   \
        "owGbwMvMwMXI6jmBP4a/KZRxLaNOEk9BYmVOfmKKXlZxfl622Ce+aqXkosySzOTEHCWraqXMlNS8" \
        "ksySShA7JT85O7VItyg1LbUoNS85VclKydDIXM8ACA2tTA0MDPRLUotL9BMLCqzKDJVqdZQycxPT" \
        "U5F05ibmZaYBleimZKYDKaD+4oxEI1MzKwujFENTI8s0w8RU49TkZMtkY8OkFGPzZGNzMwNLg6QU" \
        "AwPzNGNL80QT4zTDZCPDJAPzVHPDlDSTJJM0U2MDY1OQZSWVBSAXJZbk52YmKyTn55UkZualFikU" \
        "Z6bnJZaUFqWCFOUXlGTm50G8llyUClRchNBjqmdkrGeoBDQqMxfovMTcAiUrQ3NLMzMzUwszy9ra" \
        "TkZLFgZGLgZlMUWWC7c54r8WeS/sWhN+ERaerEyg8GNtZmAMbGDg4hSAiR/+z8GwOoVl2i6pub57" \
        "m9tEc84w/Nf/53cyMJOZ7e+3P7eX7rHa8ilNXOC87sHfsnb7VMqWtN8y+sU4f8nSzsffHgtxLH+y" \
        "ZJ1i6D/5be8mCek1LLFt3d+y+8L9v1KH92dZ+bcsrLC1YY1e169XeCp58ufodTY2iS4BSzi32zCq" \
        "9tcY6IVv/XshTPh9GfcF926O5uQgvpO/t7Mav/wjZXvcNSsqnoH7kpEfs9nlv/W8es+ZFzx+yhWl" \
        "U9T+M/nIima7f9eiXd+knVd/Pt/h4ocTrf+nL9TvsPb7svzG2T3iHjx3PTh2tjI3lbrtq5zFrv9m" \
        "lwqbseuLv/PeypyQ37jaMbomPjbzy+V/ajfaeW4zVqgBAA=="
#define SHA1_SIG                                                                       \
        "owGbwMvMwMTI6jmBP4a/KZRxLaNOEk9BYmVOfmKKXlZxfl622Ce+aqXkosySzOTEHCWraqXMlNS8" \
        "ksySShA7JT85O7VItyg1LbUoNS85VclKydDIXM8ACA2tTA0MDPRLUotL9BMLCqzKDJVqdZQycxPT" \
        "U5F05ibmZaYBleimZKYDKaD+4oxEI1MzKwujFENTI8s0w8RU49TkZMtkY8OkFGPzZGNzMwNLg6QU" \
        "AwPzNGNL80QT4zTDZCPDJAPzVHPDlDSTJJM0U2MDY1OQZSWVBSAXJZbk52YmKyTn55UkZualFikU" \
        "Z6bnJZaUFqWCFOUXlGTm50G8llyUClRchNBjqmdkrGeoBDQqMxfovMTcAiUrQ3NLMzMzUwszy9ra" \
        "TkZjFgZGJgZZMUWWC7c54r8WeS/sWhN+ERaerEyg8GPg4hSAiRz8zMFwa6nN698bXa88L9Pp6Mzf" \
        "EHK9LeR5q8ufVge/YNNQwatMGkodH0SS3/N8i43VCGMX+SFmujhWYmorn6/I1tnvZphcefDZnc/4" \
        "5h3xxQleM192Gv4x9s1iupEw7a6/dZHiqnlLukxqp3aqnDS4WdPq8nL6m8zbBUum8RkwnE+JkH6u" \
        "nexatW/rpaxn14UOKO8xZ34gtvXChD96AnGyOb/OrQxIbP/FfJfvxXcpzUaXe1117q1rHx/NaS46" \
        "onh9YV5jheM17dP9tlXmG5hkHzjzLTi+0uwr08Nd7zTWzhS+tFxgZ/gb84c1Fpue2a2rqvYxn6/I" \
        "fDj3rcBqhU0Jq3ZpPGDN9r/oypjVJcHJcRkA"
#define TEXT_SIG                                                                       \
        "owGbwMvMyMXI6jmBP4a/KZTx9IGcEp6CxMqc/MQUvazi/LxssU981UrJRZklmcmJOUpW1UqZKal5" \
        "JZkllSB2Sn5ydmqRblFqWmpRal5yqpKVkqGRuZ4BEBpamRoYGOiXpBaX6CcWFFiVGSrV6ihl5iam" \
        "pyLpzE3My0wDKtFNyUwHUkD9xRmJRqZmVhZGKYamRpZphompxqnJyZbJxoZJKcbmycbmZgaWBkkp" \
        "BgbmacaW5okmxmmGyUaGSQbmqeaGKWkmSSZppsYGxqYgy0oqC0AuSizJz81MVkjOzytJzMxLLVIo" \
        "zkzPSywpLUoFKcovKMnMz4N4LbkoFai4CKHHVM/IWM9QCWhUZi7QeYm5BUpWhuaWZmZmphZmlrW1" \
        "nYzGLIyMXAyyYoosF25zxH8t8l7YtSb8Iiw8WZlA4cfAxSkAE9lyl4Nh+jmTD7Zp3YtEXZVFjjuU" \
        "nI36oXx2spb/lfdsH5SZgrwXp86aW+y8NPFWpbDzyvmOz7qKD2zjmayx7ZSSlOtKOzePFwseb3rK" \
        "/VXx0888TS6BGZHBL3k8523irOp0nNXpI6f2ZUvcclvJJQdOuG3ccmv+n+3Hfc4+ZjPbaTAvzNLc" \
        "RnJmuU7SosNzZp04JVPsV/UlqfCf5Npsq9CQzC9nD4r/8HwsbHSWVWO18Ns3PCxP1oXV/9imsd9a" \
        "1ncyW906qb/JdZGzCxa3LA17tPTNhIZrM+sOt4o8nbpdLHnH139fb21ensRkz+10Zo2rrEHApJVv" \
        "o/7e25RlaXyGYYWU/6Vl3aX60nGFK/p/f7CaDQA="
#define DETACHED_SIG                                                                   \
        "iQEzBAABCgAdFiEE0NsIX/VyS6GKrFfRBUmQD1wPglUFAmsW8g4ACgkQBUmQD1wPglVGrwf/YLco" \
        "uu9bCwmOt34QstkH10599YNEHFMkZ7uoGgtw0gjFAiU1W7CZcFbFDZ3m7YiFsihHONsf7qN6hZQv" \
        "H35RQDfoAGb4sYExEcaAIyPUbb9OF3YJT1CHFRmu2Y25Wh1brJ/GGbMP6ie3aAcap+Ft9OIhdpiZ" \
        "iGC/cDcj3N9VFylUOD1oD9JZjyOXWd881AI5z44wwdP51aOVOHeYwa/2R03Js5ArAI03Av0fqTkk" \
        "HMNfiJOU7lG00b01r4kfLC+w9bDowXdh4ym5ZbJxGnb/htbkJ6r1KVAnSM0KSx2afYVhWelp+SKq" \
        "caWPycudnu/XjqEUNkZ6UtYDsMzhgD47bQ=="
#define STORE_SIG                                                                      \
        "owFNj01uAyEMRtV91WXXEetkwk+AwG08YKY0GUAMrTSK5ki9XE9QRl208sJevGd//no6js8F1nsG" \
        "P7wvOd1ev18exNXYooM7sQ8SPaYW27rPPrsb1lPFgBWTQ2IJ43qgvZiVlNJzw6WdoRT7ych2JHGG" \
        "Cf+ZM6QYOnLyceqt+8sbcKnslXsmuQkMUKBzxgk2eqGd0IoaOnpKdRBGw0UE5jgbqUbNfLiMlyAF" \
        "FXI/1tayJ4KW5+gOLqcGMWE9LHFK0D4q7lAuLeb0+5qr2OH658iBi4GRvirOPR7MhVimjVJKXpXZ" \
        "th8="
#define PLAIN_SIG                                                                      \
        "kA0DAAoBBUmQD1wPglUBrQEsYgxwYXlsb2FkLmpzb25rFvIOeyJjcml0aWNhbCI6eyJpZGVudGl0" \
        "eSI6eyJkb2NrZXItcmVmZXJlbmNlIjoiMTI3LjAuMC4xOjUwMDAvdGVzdC9hcHA6djEifSwiaW1h" \
        "Z2UiOnsiZG9ja2VyLW1hbmlmZXN0LWRpZ2VzdCI6InNoYTI1Njo4MmQxNTI5ZjFhZTNlY2M5YzMx" \
        "YmQzN2MzNzYwOTBiZDAwN2YzOTdhNDNmMWMyMWIwN2U3MWRmNGI0ZjUzMDM1In0sInR5cGUiOiJh" \
        "dG9taWMgY29udGFpbmVyIHNpZ25hdHVyZSJ9LCJvcHRpb25hbCI6eyJjcmVhdG9yIjoiYXRvbWlj" \
        "IDUuMjMuMSIsInRpbWVzdGFtcCI6MTc5NjY2NTg2OX19iQEzBAABCgAdFiEE0NsIX/VyS6GKrFfR" \
        "BUmQD1wPglUFAmsW8g4ACgkQBUmQD1wPglVGrwf/YLcouu9bCwmOt34QstkH10599YNEHFMkZ7uo" \
        "Ggtw0gjFAiU1W7CZcFbFDZ3m7YiFsihHONsf7qN6hZQvH35RQDfoAGb4sYExEcaAIyPUbb9OF3YJ" \
        "T1CHFRmu2Y25Wh1brJ/GGbMP6ie3aAcap+Ft9OIhdpiZiGC/cDcj3N9VFylUOD1oD9JZjyOXWd88" \
        "1AI5z44wwdP51aOVOHeYwa/2R03Js5ArAI03Av0fqTkkHMNfiJOU7lG00b01r4kfLC+w9bDowXdh" \
        "4ym5ZbJxGnb/htbkJ6r1KVAnSM0KSx2afYVhWelp+SKqcaWPycudnu/XjqEUNkZ6UtYDsMzhgD47" \
        "bQ=="
#define ZLIB_SIG                                                                       \
        "owJ4nJvAy8zAxcjqOYE/hr8plHEto04ST0FiZU5+YopeVnF+XrbYJ75qpeSizJLM5MQcJatqpcyU" \
        "1LySzJJKEDslPzk7tUi3KDUttSg1LzlVyUrJ0MhczwAIDa1MDQwM9EtSi0v0EwsKrMoMlWp1lDJz" \
        "E9NTkXTmJuZlpgGV6KZkpgMpoP7ijEQjUzMrC6MUQ1MjyzTDxFTj1ORky2Rjw6QUY/NkY3MzA0uD" \
        "pBQDA/M0Y0vzRBPjNMNkI8MkA/NUc8OUNJMkkzRTYwNjU5BlJZUFIBclluTnZiYrJOfnlSRm5qUW" \
        "KRRnpucllpQWpYIU5ReUZObnQbyWXJQKVFyE0GOqZ2SsZ6gENCozF+i8xNwCJStDc0szMzNTCzPL" \
        "2tpORmMWBkYuBlkxRZYLtznivxZ5L+xaE34RFp6sTKDwY+DiFICJuK1n/5+wXWPX+2huzr7tdQKb" \
        "brJf96v92uwiE6ySvnuFFHfBJY6jTKqm0RtmFoQd5Z377G1H6yYNd4vb8u8WV7VO0ZevC3Qwf8GQ" \
        "9mNjo6HgsQZl5Su5+/3Eyzj9A9pFJdfd7N0ZJRu9Zv4xyc38r9S3Z7BLLX+Y++WRYtmMmR0J+wvM" \
        "le/cDxXXDLGwzeC/FNmvPD3yvs0VJsvzfQYHL/+8uniqRfmMg+u/ufue3DxBm6HXnOmv/EpLFZnD" \
        "8R2Tp7wL3HJxr+n6Tnkd/Q1fN7w4WJ74WHNn6qZCqbL/bdeeqK/6qhmg7nGWy1t2Vm1rYuTLzJ9K" \
        "qwqX9p88PXfe++t9C0XM3KqCrjFvOPOwwc46FwBJo+2/"
#define BZ2_SIG                                                                        \
        "owNCWmg2MUFZJlNZB2Kz3AAA/n///v/ntv7v//9F6/+8////u3vzzvOq9/y6qy7/rL1zl2LAAama" \
        "IxiajJhAaaBoDQNBoaaA0ABo0ANADEAAaAAA00NBoAaD1GQabU0eoMIYmRoRVPKaekNNGg0DRoaA" \
        "GgNBkDTQBoA9R6jQD1DRoaZDQMgNADQAAAAAAAA0EVPRqT0ZU9gao9E0jACYE9IwBDJphMAmIYBM" \
        "TNT0mAAENDJiNGaEMAAAEGCNNAg0aGgBoNNAGQ0DTTRoYTQDJoDQANDEZNMmAIxMQAaBpkMgwjQG" \
        "jJoAAA3t7kRXwoQ5NlHesRzknhZIQw8mrfT/pyCrCmJAkXkASyikCR8ZABAnwXYMvnIs9bDpwcqM" \
        "9yalvCUMe4paWBRr3mxC5Q+LeQoYhFd3cMN6KMF+wAOAogMgyRetXDoalQjT+nvwcX4R7ROQFOJT" \
        "IjboDVWzIjhfaRUobrgFAYYrIlLA1orl8soa9jv2zApODW3/VTr2JpZigmBz/XnFuSDVJBawV8u2" \
        "QsGRFGuR2DVET15TkFskd58q60jE17M9Ro6rARLTLALrkViPS3XTVx/LlssqWjHe5KO89iBpzaY1" \
        "OA9DComH2SIrW7MIwVqNspRRqgMx1HQzQTdcR4EwOfFFMROGwgwBnbSQGcciEkeHTk40S7pYrgBy" \
        "ea0NQK7Qg7yNoEsuEzZvippxrJiRsiUFdQ4+eeCCpGC0sZonEXR35Ve5gYFai6CdwG3w/2PqMTDB" \
        "gW2ICQOBDyDcY94125EEMDyb6YxBWaiLIZSUFqDACLHQUKqYRakADGq1osX2sLMcQGdQo9OMBJAm" \
        "liLZM4mxFraMEsPPHKLLMfqtw4001yMkKET4NqgeMmeFhEmhXr/Y+xU/F1rcWC0TyrGMNZK5Sl85" \
        "bCmxvlIHGxY6qJM9Ze7FdzORoRI4f6F8jSzF317rgyhldVrWDJBUw7CX7vn6FS4bJpckKX9/Gra9" \
        "ZnNd+IPLYSe/v5aBBLCSWYnLVf2K6pP8XckU4UJAHYrPcA=="
#define SYMENC_SIG                                                                     \
        "jA0ECQMCAbIercpjPg7/0ukByCIPApzZaeNxaIpMKfqpNfS2xgiSAWwEdphvHW5L/k1RfxGmdEvi" \
        "cw2J7OhXMUsHl8DoLG2UZtfNAhJ7TvNho7FJB3QKjhhpaguMofNdaeG2xLnFsuGE3Xlt07R1Xr/r" \
        "v8e+VTiC89+Sjxk50R+y3Vhka+/N99MuRkU1qvyDjX1GHc1PcpnWrKGHKSR8+gufeWzaRU8jqQNw" \
        "AlI+9t6lHFJYpE/yWQWwszs4q7kh+yVIzQ59T59rGYfI9tmr/3M1GSjA/G7AH0SxRP2IiFCQb7Dt" \
        "U1K/iAqE4YsSc3iQvxPFuYKH8oAMTkj4dDJ/aiMuR7E5vneNd0cHs8aosfaiKSn3GVg/H+BW3lg0" \
        "85uDZ3VQLt+02CouGRiVmligV9kn3jaA007XjYMH+RRgllkQP5GsAN4wnvk8HfSjEhDj0TWOytga" \
        "igazCFHt0C1JaUKixLwyZzbQzNsGa+ixn1WZWYMQEvYiGAK1gN51XhnjD0LD/MESj8Uhpvpkma6m" \
        "sh5pQHy2Dr05u3cGCt7xKyTuULvVsxV33nJbgef/cs1crZHB0tB/B4STF97eEDcgwhjeLNPIhQaC" \
        "Z9y0Ec56sVRt2/ypLFGEpbVUM1T+c8XrlpiYEDXo5iJul07gYepCiI3si2ZIK9P50ocinjGqSp6A" \
        "nt2q3BFalCVEhfTqDfyQ2H5j8vNUmBam/YnFN7vsSH4siIq6P4BJr7ssuEmR1kjjghVOkE0viYVs" \
        "wmr782Enz+YZKAZUhJLYPTfCk3r/DirVKnGFKnZwPzh8UaQK7dxeRjDLcTqxH8C+ElyIwaTimGcr" \
        "Tuwuf917J12l2CymU9E0TWs4kTo+WPXHrOwpsxg="

#define RSA_ASC                                                              \
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n"                             \
        "\n"                                                                 \
        "mQENBGsW8gUBCADzh4b4ty03REHwlkdC+gDVynVTOYaDh/D8D2DDMRsFcryIDeMl\n" \
        "Ydaj/S/9GOFhR/hNrmCg3IuwWHsAEKGcWXh4vf/wiDhw0lKpD2UtNGNKGQyLdf/D\n" \
        "mRcbzdRRBLaqRX0/+ye50v+8XnQyz8RVBP6VEsu2z/Ri0PJ3xagVlKN2BTofgZLj\n" \
        "E7sQSsGJ683baXjwl/PTExnAOlZMTnlnIVXQcAxRCJKlqa2deY2TdLCC+BLTblsz\n" \
        "LSdU4HMgEzkLxSxwubNN4oJjYnlOOcTUOiIxsfQREuVDlaSTerGce79dtBT+uVpB\n" \
        "NvJ9GU/JPc52zypxoLM4VChED3U0LXYnCMs1ABEBAAG0G1Rlc3QgUlNBIDxyc2FA\n" \
        "ZXhhbXBsZS50ZXN0PokBTgQTAQoAOBYhBNDbCF/1ckuhiqxX0QVJkA9cD4JVBQJr\n" \
        "FvIFAhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEAVJkA9cD4JVLPkIAOhQ\n" \
        "LmNuyyBwhJk5AOmVnOSWF9XDX+No0XnmGOC6mNYhIOKdWWcZk4zM8/jyse9NJ7eb\n" \
        "IHhN1t4lDcxHg6SRH5dw/gKnd9umPdT9irYEnMRbRjuVGNHjyyq0ZxUvB4m80uXq\n" \
        "SaUkm5MeSq+w2YV0I98pkTqByUDffiLvJJGQ4Y3kEToWNFP5kBaeS67QfUJBtM/x\n" \
        "WsmQhzsg1VQGBCOgxIw4FCB+hUnpZwKdVyi37XNoR5uqEmeGjg3HE6KgX0WKVsi/\n" \
        "lbn/6IVHhkakrjc30TonRQvVbOd1dE5Is/UklcILlkIuUA9oe9Vs+DzJo8oX74Me\n" \
        "qePGIvKVCJ5qvM1edS8=\n"                                             \
        "=k1Zf\n"                                                            \
        "-----END PGP PUBLIC KEY BLOCK-----\n"                               \
        "\n"

/* A key made with a one-day expiry (created 1796667671, self-signature key expiration 86400 s)
 * and a key whose revocation certificate was imported, each with a signature of the payload
 * made before (gpg --sign). */
#define EXPKEY_FPR     "D1D9A012213FF4BE40A72489A714F017F041F653"
#define EXPKEY_CREATED 1796667671
#define REVKEY_FPR     "AEFB311455DF9B609EB88B46ED976922DA717039"
#define EXPKEY_PUB                                                                     \
        "mDMEaxb5FxYJKwYBBAHaRw8BAQdAix+KA87rdE8x8LpUFcDGxRhwqIJgxhCRupVBlewSBT60G0V4" \
        "cGlyaW5nIDxleHBAZXhhbXBsZS50ZXN0PoiWBBMWCAA+FiEE0dmgEiE/9L5ApySJpxTwF/BB9lMF" \
        "AmsW+RcCGwMFCQABUYAFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AACgkQpxTwF/BB9lP1HgD+MgN5" \
        "QcK8/YPjMNfhqQKcaNGipkVs6hoxeeaTh7ucRGsBAJ93syGxq+1FS5VaaOzsZoE3t0Gs8ySMEXpr" \
        "qOXN9P4K"
#define EXPKEY_SIG                                                                     \
        "owGbwMvMwCG2XOSD+AfHb8GMaxl1kngKEitz8hNT9LKK8/OyxX6KVyslF2WWZCYn5ihZVStlpqTm" \
        "lWSWVILYKfnJ2alFukWpaalFqXnJqUpWSoZG5noGQGhoZWpgYKBfklpcop9YUGBVZqhUq6OUmZuY" \
        "noqkMzcxLzMNqEQ3JTMdSAH1F2ckGpmaWVkYpRiaGlmmGSamGqcmJ1smGxsmpRibJxubmxlYGiSl" \
        "GBiYpxlbmieaGKcZJhsZJhmYp5obpqSZJJmkmRobGJuCLCupLAC5KLEkPzczWSE5P68kMTMvtUih" \
        "ODM9L7GktCgVpCi/oCQzPw/iteSiVKDiIoQeUz0jYz1DJaBRmblA5yXmFihZGZpbmpmZmVqYWdbW" \
        "dpSyMIhxMMiKKbJcvLlASNH+yz6H5SqdsOBkZQIFHwMXpwBMxHclw//SWbvdnLdk/+w9yC9l9eIu" \
        "05+r9/Puel2Qkw2+JTZ/5fv3jAx9987d/dYdIqxT1hV4PD3fe9m5U84NU9X7X7Tlvbn73IIFAA=="
#define REVKEY_PUB                                                                     \
        "mDMEaxb5FxYJKwYBBAHaRw8BAQdANfZ9Da4tOqaB4UBKtacabDjmfaPIMrhORuTt/dJc4KmIeAQg" \
        "FggAIBYhBK77MRRV35tgnriLRu2XaSLacXA5BQJrFvkXAh0AAAoJEO2XaSLacXA5Nw4BAI4nGh0p" \
        "sKwyjGeI5Jfv6sG3F6wRdUo8cVYd2uSbMru/AQC++qsbw8d+1N3i3jJVDQWF9+TCpblaWINqHxED" \
        "V6pkA7QaUmV2b2tlZCA8cmV2QGV4YW1wbGUudGVzdD6IkAQTFggAOBYhBK77MRRV35tgnriLRu2X" \
        "aSLacXA5BQJrFvkXAhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEO2XaSLacXA57u8BAKe+" \
        "cVvqXSsxP9Cd3uysSgYmNLBPTlW5uUdurytZFqKoAQCzBlIti1AlMNNWpmenwErZqom4sSXv9N1E" \
        "39/iphjlDQ=="
#define REVKEY_SIG                                                                     \
        "owFNUD1Iw0AUTv3DioKDpDgI9QZRtPUu1yRNwFFBJxcXcfByudSz5sfkKtTaRSsKLg5CB8FBHFzU" \
        "VXB3cFIcBEGcHB0cRVATRJQ3vMfj+973vW+/p1XqlF+bHDyuBkbqLDVmdQekuuITO78c+V5Zfs/U" \
        "AA254JSsALMGuM08wUU1mW2fllmYC5nDQuZRBkyAFD0P40KmCiEcFywS4yQIzDUE6mOAu6TE/jFd" \
        "4nEnhuRsXopbzI+WiKJqZlGxkaoYDiIMM0oNipFlY51iXYMGtGwIdQcbOilgB1EFWVBnOrKdglVw" \
        "VAyxmoiJapA4IsJ3Oc1S3xOEeyzMRrzkEVEJWQLyA8F97+c1GrIYHP5x1LyC8wjEp7gb2yNuAEyk" \
        "G5qmqUXNqNd3K22S3CkNyINt5x+ob+75cPHocm/qN872liQ+qSvd+7vJSdLXwsnARnn4TWkOjexs" \
        "adfNh9sJOZCN3fu7tPtpHs+mpKf12tXE/E2/O32x3WAo89C43Xw9MydnfOnl9GC04xs="

/* ---- helpers ---- */

static uint8_t *unb64(const char *s, size_t *len)
{
        uint8_t *out = NULL;
        assert_int_equal(img__b64_decode(s, strlen(s), false, &out, len), 0);
        return out;
}

static void keyring_b64(struct img_pgp_keyring *kr, const char *key_b64)
{
        size_t len;
        _cleanup_free_ uint8_t *k = unb64(key_b64, &len);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__pgp_keyring_add(kr, k, len, &err), 0);
}

/* Verifies sig (base64) with key (base64) at `now`; returns the result, checks the payload. */
static int verify(const char *key_b64, const char *sig_b64, int64_t now, const char *want_fpr)
{
        _cleanup_(img__pgp_keyring_done) struct img_pgp_keyring kr = {0};
        keyring_b64(&kr, key_b64);
        size_t len, plen;
        _cleanup_free_ uint8_t *sig = unb64(sig_b64, &len);
        _cleanup_free_ uint8_t *payload = NULL;
        char fpr[41];
        _cleanup_error_ struct cc_error *err = NULL;
        int r = img__pgp_verify(&kr, sig, len, now, &payload, &plen, fpr, &err);
        if (r == 0) {
                assert_string_equal(fpr, want_fpr);
                assert_int_equal(plen, strlen((char *)payload));
                assert_non_null(strstr((char *)payload, "\"type\":\"atomic container signature\""));
        } else {
                assert_null(payload);
                assert_non_null(err);
        }
        return r;
}

struct mock {
        const char *const *simple_b64; /* NULL-terminated */
        int simple_rc;
        const char *const *sigstore; /* pairs: payload, signature (NULL = none) */
        size_t n_sigstore;
        const char *only_digest; /* sigstore signatures for this digest only, if set */
        unsigned calls;
};

static int mock_simple(void *data, const char *digest, struct img_sig_blob **ret, size_t *ret_n,
                       struct cc_error **err)
{
        struct mock *m = data;
        m->calls++;
        *ret = NULL;
        *ret_n = 0;
        if (m->simple_rc < 0)
                return cc_error_set(err, -m->simple_rc, "lookaside HTTP 500");
        size_t n = 0;
        while (m->simple_b64 && m->simple_b64[n])
                n++;
        struct img_sig_blob *b = calloc(n + 1, sizeof(*b));
        assert_non_null(b);
        for (size_t i = 0; i < n; i++) {
                b[i].data = unb64(m->simple_b64[i], &b[i].len);
                assert_true(asprintf(&b[i].name, "signature-%zu", i + 1) > 0);
        }
        *ret = b;
        *ret_n = n;
        return 0;
}

static int mock_sigstore(void *data, const char *digest, struct img_sigstore_sig **ret,
                         size_t *ret_n, struct cc_error **err)
{
        struct mock *m = data;
        m->calls++;
        if (m->only_digest && strcmp(m->only_digest, digest)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        struct img_sigstore_sig *s = calloc(m->n_sigstore + 1, sizeof(*s));
        assert_non_null(s);
        for (size_t i = 0; i < m->n_sigstore; i++) {
                const char *p = m->sigstore[2 * i], *sig = m->sigstore[2 * i + 1];
                if (p) {
                        s[i].payload = (uint8_t *)strdup(p);
                        s[i].payload_len = strlen(p);
                }
                s[i].signature_b64 = sig ? strdup(sig) : NULL;
        }
        *ret = s;
        *ret_n = m->n_sigstore;
        return 0;
}

/* check() prepares each policy ahead (img__policy_prepare(), as a spare pull helper does). */
static bool prepare_ahead;

/* Runs policy `json` for `ref` with digest and the mock; returns the result and the message. */
static int check(const char *json, const char *ref, const char *digest, struct mock *m,
                 char **ret_msg)
{
        _cleanup_(img__policy_freep) struct img_policy *p = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        int r = img__policy_load((const uint8_t *)json, strlen(json), NULL, &p, &err);
        if (r < 0)
                fprintf(stderr, "load: %s\n", cc_error_message(err));
        assert_int_equal(r, 0);
        if (prepare_ahead)
                img__policy_prepare(p);
        struct img_sig_source src = {.data = m, .simple = mock_simple, .sigstore = mock_sigstore};
        r = img__policy_check(p, ref, digest, NULL, &src, 1800000000, &err);
        if (ret_msg)
                *ret_msg = r < 0 ? strdup(cc_error_message(err)) : NULL;
        return r;
}

static void expect_reject(const char *json, const char *ref, const char *digest, struct mock *m,
                          const char *needle)
{
        _cleanup_free_ char *msg = NULL;
        assert_int_equal(check(json, ref, digest, m, &msg), -EACCES);
        if (!strstr(msg, needle))
                fail_msg("'%s' not in '%s'", needle, msg);
        assert_non_null(strstr(msg, "Image policy rejected: Denied by policy: image "));
}

/* ---- OpenPGP ---- */

static void test_kat1(void **state)
{
        char d[72];
        img__digest_buf(KAT1_MANIFEST, strlen(KAT1_MANIFEST), d);
        assert_string_equal(d, KAT1_DIGEST);
        _cleanup_(img__pgp_keyring_done) struct img_pgp_keyring kr = {0};
        keyring_b64(&kr, KAT1_KEY);
        assert_int_equal(kr.n, 1);
        assert_string_equal(img__pgp_key_fpr(&kr, 0), KAT1_FPR);
        size_t len, plen;
        _cleanup_free_ uint8_t *sig = unb64(KAT1_SIG, &len);
        _cleanup_free_ uint8_t *payload = NULL;
        char fpr[41];
        assert_int_equal(len, 384);
        assert_int_equal(img__pgp_verify(&kr, sig, len, 1800000000, &payload, &plen, fpr, NULL), 0);
        assert_string_equal(fpr, KAT1_FPR);
        assert_int_equal(plen, 282);
        assert_memory_equal(payload, KAT1_PAYLOAD, plen);
}

static void test_pgp_algorithms(void **state)
{
        /* RSA/SHA-512 by skopeo, the same payload uncompressed, zlib, bzip2 (gpg --sign). */
        assert_int_equal(verify(RSA_PUB, RSA_SIG, 1800000000, RSA_FPR), 0);
        assert_int_equal(verify(RSA_PUB, PLAIN_SIG, 1800000000, RSA_FPR), 0);
        assert_int_equal(verify(RSA_PUB, ZLIB_SIG, 1800000000, RSA_FPR), 0);
        assert_int_equal(verify(RSA_PUB, BZ2_SIG, 1800000000, RSA_FPR), 0);
        /* ECDSA P-256 by skopeo. */
        assert_int_equal(verify(P256_PUB, P256_SIG, 1800000000, P256_FPR), 0);
        /* An ASCII-armored keyring gives the same key. */
        _cleanup_(img__pgp_keyring_done) struct img_pgp_keyring kr = {0};
        assert_int_equal(img__pgp_keyring_add(&kr, (const uint8_t *)RSA_ASC, strlen(RSA_ASC), NULL),
                         0);
        assert_int_equal(kr.n, 1);
        assert_string_equal(img__pgp_key_fpr(&kr, 0), RSA_FPR);
        /* Several keys in one keyring: both found. */
        keyring_b64(&kr, KAT1_KEY);
        assert_int_equal(kr.n, 2);
}

static void test_pgp_refused(void **state)
{
        /* Signed by a key that is not in the keyring. */
        assert_int_equal(verify(KAT1_KEY, RSA_SIG, 1800000000, NULL), -ENOKEY);
        /* Signed by a signing subkey of a trusted primary: refused, as Debian's skopeo does. */
        assert_int_equal(verify(SUB_PUB, SUB_SIG, 1800000000, NULL), -ENOKEY);
        /* Expiring signature: valid for a day after its creation, refused after. */
        assert_int_equal(verify(RSA_PUB, EXPIRING_SIG, EXPIRING_CREATED + 60, RSA_FPR), 0);
        assert_int_equal(verify(RSA_PUB, EXPIRING_SIG, EXPIRING_CREATED + 2 * 86400, NULL),
                         -EKEYEXPIRED);
        /* SHA-1 and text-mode signatures. */
        assert_int_equal(verify(RSA_PUB, SHA1_SIG, 1800000000, NULL), -EPROTONOSUPPORT);
        assert_int_equal(verify(RSA_PUB, TEXT_SIG, 1800000000, NULL), -EPROTONOSUPPORT);
        /* Detached signature, literal data without signature, encrypted message. */
        assert_int_equal(verify(RSA_PUB, DETACHED_SIG, 1800000000, NULL), -EBADMSG);
        assert_int_equal(verify(RSA_PUB, STORE_SIG, 1800000000, NULL), -EBADMSG);
        assert_int_equal(verify(RSA_PUB, SYMENC_SIG, 1800000000, NULL), -EBADMSG);

        _cleanup_(img__pgp_keyring_done) struct img_pgp_keyring kr = {0};
        keyring_b64(&kr, RSA_PUB);
        size_t len, plen;
        _cleanup_free_ uint8_t *sig = unb64(PLAIN_SIG, &len);
        uint8_t *payload = NULL;
        char fpr[41];
        /* One payload byte changed: "test/app" -> "test/apq". */
        uint8_t *p = memmem(sig, len, "test/app", 8);
        assert_non_null(p);
        p[7] = 'q';
        assert_int_equal(img__pgp_verify(&kr, sig, len, 1800000000, &payload, &plen, fpr, NULL),
                         -EBADMSG);
        p[7] = 'p';
        assert_int_equal(img__pgp_verify(&kr, sig, len, 1800000000, &payload, &plen, fpr, NULL), 0);
        free(TAKE_PTR(payload));
        /* Two one-pass/literal/signature sequences in one blob. */
        _cleanup_free_ uint8_t *two = malloc(2 * len);
        memcpy(two, sig, len);
        memcpy(two + len, sig, len);
        assert_int_equal(img__pgp_verify(&kr, two, 2 * len, 1800000000, &payload, &plen, fpr, NULL),
                         -EBADMSG);
        /* Every truncation fails cleanly. */
        for (size_t n = 0; n < len; n++)
                assert_true(img__pgp_verify(&kr, sig, n, 1800000000, &payload, &plen, fpr, NULL) <
                            0);
        assert_null(payload);
}

/* Key expiry and revocation as the keyring's self-signatures state them. */
static void test_pgp_key_state(void **state)
{
        assert_int_equal(verify(EXPKEY_PUB, EXPKEY_SIG, EXPKEY_CREATED + 60, EXPKEY_FPR), 0);
        assert_int_equal(verify(EXPKEY_PUB, EXPKEY_SIG, EXPKEY_CREATED + 86400 + 1, NULL),
                         -EKEYEXPIRED);
        assert_int_equal(verify(REVKEY_PUB, REVKEY_SIG, EXPKEY_CREATED + 60, NULL), -EKEYREVOKED);
}

static void test_simple_gate(void **state)
{
        _cleanup_(img__pgp_keyring_done) struct img_pgp_keyring kr = {0};
        keyring_b64(&kr, KAT1_KEY);
        const char *armored =
                "-----BEGIN PGP MESSAGE-----\n\nowFNUDssBFEU\n-----END PGP MESSAGE-----\n";
        _cleanup_free_ char *why = NULL;
        uint8_t *payload = NULL;
        size_t plen;
        assert_int_equal(img__simple_sig_check(&kr, (const uint8_t *)armored, strlen(armored), 0,
                                               &payload, &plen, &why),
                         -EBADMSG);
        assert_non_null(strstr(why, "unrecognized signature format, starting with binary 0x2d"));
        free(TAKE_PTR(why));
        assert_int_equal(
                img__simple_sig_check(&kr, (const uint8_t *)"", 0, 0, &payload, &plen, &why),
                -EBADMSG);
        assert_null(payload);
}

/* ---- payload ---- */

static void test_payload(void **state)
{
        struct img_sig_payload pl;
        assert_int_equal(img__sig_payload_parse((const uint8_t *)KAT1_PAYLOAD, strlen(KAT1_PAYLOAD),
                                                IMG_PAYLOAD_SIMPLE, &pl, NULL),
                         0);
        assert_string_equal(pl.docker_reference, "127.0.0.1:5000/test/app:v1");
        assert_string_equal(pl.manifest_digest, KAT1_DIGEST);
        img__sig_payload_done(&pl);
        /* A cosign payload with "optional": null is fine for sigstore only. */
        assert_int_equal(img__sig_payload_parse((const uint8_t *)KAT3_PAYLOAD, strlen(KAT3_PAYLOAD),
                                                IMG_PAYLOAD_COSIGN, &pl, NULL),
                         0);
        img__sig_payload_done(&pl);

#define CRIT(x) "{\"critical\":{" x "},\"optional\":{}}"
#define ID      "\"identity\":{\"docker-reference\":\"a.example/b:1\"}"
#define IMG     "\"image\":{\"docker-manifest-digest\":\"" KAT1_DIGEST "\"}"
#define TYPE    "\"type\":\"atomic container signature\""
        static const char *const bad[] = {
                CRIT(TYPE "," IMG "," ID ",\"type\":\"atomic container signature\""), /* dup */
                CRIT(TYPE "," IMG "," ID ",\"extra\":1"),
                CRIT(TYPE "," IMG),
                CRIT("\"type\":\"cosign container image signature\"," IMG "," ID),
                CRIT(TYPE ",\"image\":{\"docker-manifest-digest\":\"" KAT1_DIGEST
                          "\",\"x\":1}," ID),
                CRIT(TYPE "," IMG ",\"identity\":{\"docker-reference\":\"a\",\"x\":\"\"}"),
                CRIT(TYPE ",\"image\":{\"docker-manifest-digest\":\"sha256:12\"}," ID),
                CRIT(TYPE ",\"image\":{\"docker-manifest-digest\":7}," ID),
                "{\"critical\":{" TYPE "," IMG "," ID "},\"optional\":{\"timestamp\":1.5}}",
                "{\"critical\":{" TYPE "," IMG "," ID "},\"optional\":{\"creator\":1}}",
                "{\"critical\":{" TYPE "," IMG "," ID "},\"optional\":null}",
                "{\"critical\":{" TYPE "," IMG "," ID "}}",
                "{\"critical\":{" TYPE "," IMG "," ID "},\"optional\":{},\"x\":{}}",
                "[]",
                "{\"critical\":{" TYPE "," IMG "," ID "},\"optional\":{}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                _cleanup_error_ struct cc_error *err = NULL;
                if (img__sig_payload_parse((const uint8_t *)bad[i], strlen(bad[i]),
                                           IMG_PAYLOAD_SIMPLE, &pl, &err) != -EINVAL)
                        fail_msg("payload %zu accepted: %s", i, bad[i]);
        }
        const char *ok = "{\"critical\":{" TYPE "," IMG "," ID "},\"optional\":{\"timestamp\":5,"
                         "\"unknown\":[1]}}";
        assert_int_equal(img__sig_payload_parse((const uint8_t *)ok, strlen(ok), IMG_PAYLOAD_SIMPLE,
                                                &pl, NULL),
                         0);
        img__sig_payload_done(&pl);
}

/* ---- policy loading and scopes ---- */

static void test_policy_load_errors(void **state)
{
        static const struct {
                const char *json, *needle;
        } cases[] = {
                {"{\"transports\":{}}", "Default policy is missing"},
                {"{\"default\":[]}", "must not be empty"},
                {"{\"default\":[{\"type\":\"reject\"}],\"default\":[]}", "duplicate"},
                {"{\"default\":[{\"type\":\"reject\",\"x\":1}]}", "unknown member \"x\""},
                {"{\"default\":[{\"type\":\"nope\"}]}", "unknown policy requirement type"},
                {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"Foo\",\"keyPath\":\"/k\"}]}",
                 "Unrecognized keyType"},
                {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
                 "\"keyData\":\"AAAA\"}]}",
                 "exactly one of"},
                {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\"}]}",
                 "exactly one of"},
                {"{\"default\":[{\"type\":\"sigstoreSigned\",\"fulcio\":{}}]}",
                 "keyless (Fulcio/Rekor) signatures are not supported"},
                {"{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\","
                 "\"rekorPublicKeyPath\":\"/r\"}]}",
                 "not supported"},
                {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
                 "\"signedIdentity\":{\"type\":\"exactReference\",\"dockerReference\":\"a.b/"
                 "c\"}}]}",
                 "has no tag or digest"},
                {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
                 "\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":\"a.b/c:1\","
                 "\"signedPrefix\":\"d.e\"}}]}",
                 "prefix \"a.b/c:1\" is not valid"},
                {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"a.b\":[]}}}",
                 "scope \"a.b\""},
                {"{\"default\":[{\"type\":\"insecureAcceptAnything\"}],\"x\":1}", "unknown member"},
                {"[1]", "not an object"},
                {"{\"default\":[{\"type\":\"reject\",\"typ\\u0065\":\"x\"}]}",
                 "duplicate object key \"type\""},
                {"{'default':[{\"type\":\"reject\"}]}", "invalid JSON"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct img_policy *p = NULL;
                _cleanup_error_ struct cc_error *err = NULL;
                int r = img__policy_load((const uint8_t *)cases[i].json, strlen(cases[i].json),
                                         NULL, &p, &err);
                if (r >= 0 || !strstr(cc_error_message(err), cases[i].needle))
                        fail_msg("case %zu: r=%d msg '%s', wanted '%s'", i, r,
                                 r < 0 ? cc_error_message(err) : "", cases[i].needle);
                assert_null(p);
        }
}

static void test_scopes(void **state)
{
        _cleanup_strv_ char **v = img__policy_scopes("registry.example.com:5000/ns1/app:v1");
        const char *want[] = {"registry.example.com:5000/ns1/app:v1",
                              "registry.example.com:5000/ns1/app",
                              "registry.example.com:5000/ns1",
                              "registry.example.com:5000",
                              "*.example.com",
                              "*.com",
                              NULL};
        for (size_t i = 0; want[i]; i++)
                assert_string_equal(v[i], want[i]);
        assert_null(v[6]);
        _cleanup_strv_ char **b = img__policy_scopes("busybox");
        assert_string_equal(b[0], "docker.io/library/busybox:latest");
        assert_string_equal(b[1], "docker.io/library/busybox");
        assert_string_equal(b[2], "docker.io/library");
        assert_string_equal(b[3], "docker.io");
        assert_string_equal(b[4], "*.io");
        assert_null(b[5]);

        const char *json = "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{"
                           "\"127.0.0.1:5000/test\":[{\"type\":\"reject\"}],"
                           "\"127.0.0.1:5000/test/public\":[{\"type\":\"insecureAcceptAnything\"}],"
                           "\"127.0.0.1\":[{\"type\":\"reject\"}],"
                           "\"*.example.com\":[{\"type\":\"reject\"}],"
                           "\"q.example.com/a/b:t\":[{\"type\":\"reject\"}]},"
                           "\"atomic\":{\"x\":[{\"type\":\"reject\"}]}}}";
        _cleanup_(img__policy_freep) struct img_policy *p = NULL;
        assert_int_equal(img__policy_load((const uint8_t *)json, strlen(json), NULL, &p, NULL), 0);
        assert_string_equal(img__policy_scope_for(p, "127.0.0.1:5000/test/public:v1"),
                            "127.0.0.1:5000/test/public");
        assert_string_equal(img__policy_scope_for(p, "127.0.0.1:5000/test/app:v1"),
                            "127.0.0.1:5000/test");
        assert_string_equal(img__policy_scope_for(p, "127.0.0.1:5000/other/x:v1"), "default");
        assert_string_equal(img__policy_scope_for(p, "q.example.com:443/a/b:t"), "*.example.com");
        assert_string_equal(img__policy_scope_for(p, "q.example.com/a/b:t"), "q.example.com/a/b:t");
        assert_string_equal(img__policy_scope_for(p, "q.example.com/a/b:u"), "*.example.com");
}

static void test_identity(void **state)
{
        static const struct {
                const char *rule, *image, *sig;
                bool match;
        } cases[] = {
                /* matchRepoDigestOrExact (the default) */
                {"{\"type\":\"matchRepoDigestOrExact\"}", "a.io/b/c:1", "a.io/b/c:1", true},
                {"{\"type\":\"matchRepoDigestOrExact\"}", "a.io/b/c:2", "a.io/b/c:1", false},
                {"{\"type\":\"matchRepoDigestOrExact\"}", "a.io/b/c@" KAT1_DIGEST, "a.io/b/c:1",
                 true},
                {"{\"type\":\"matchRepoDigestOrExact\"}", "a.io/b/c:1", "a.io/b/c", false},
                {"{\"type\":\"matchRepoDigestOrExact\"}", "busybox",
                 "docker.io/library/busybox:latest", true},
                {"{\"type\":\"matchRepoDigestOrExact\"}", "docker.io/library/busybox:latest",
                 "busybox:latest", true},
                {"{\"type\":\"matchRepoDigestOrExact\"}", "a.io/b/c:1", "not a ref!", false},
                /* a tag pinned to a digest (CRI through the shim): held to its tag */
                {"{\"type\":\"matchRepoDigestOrExact\"}", "a.io/b/c:1@" KAT1_DIGEST, "a.io/b/c:1",
                 true},
                {"{\"type\":\"matchRepoDigestOrExact\"}", "a.io/b/c:2@" KAT1_DIGEST, "a.io/b/c:1",
                 false},
                {"{\"type\":\"matchExact\"}", "a.io/b/c:1@" KAT1_DIGEST, "a.io/b/c:1", true},
                /* matchExact */
                {"{\"type\":\"matchExact\"}", "a.io/b/c:1", "a.io/b/c:1", true},
                {"{\"type\":\"matchExact\"}", "a.io/b/c@" KAT1_DIGEST, "a.io/b/c:1", false},
                /* matchRepository */
                {"{\"type\":\"matchRepository\"}", "a.io/b/c:9", "a.io/b/c", true},
                {"{\"type\":\"matchRepository\"}", "a.io/b/c:9", "a.io/b/c:1", true},
                {"{\"type\":\"matchRepository\"}", "a.io/b/d:9", "a.io/b/c", false},
                /* exactReference / exactRepository */
                {"{\"type\":\"exactReference\",\"dockerReference\":\"v.io/p:1.0\"}", "a.io/b:1",
                 "v.io/p:1.0", true},
                {"{\"type\":\"exactReference\",\"dockerReference\":\"v.io/p:1.0\"}", "a.io/b:1",
                 "v.io/p:1.1", false},
                {"{\"type\":\"exactRepository\",\"dockerRepository\":\"v.io/p\"}", "a.io/b:1",
                 "v.io/p:7", true},
                {"{\"type\":\"exactRepository\",\"dockerRepository\":\"v.io/p\"}", "a.io/b:1",
                 "v.io/q:7", false},
                /* remapIdentity */
                {"{\"type\":\"remapIdentity\",\"prefix\":\"127.0.0.1:5000/test/mirror\","
                 "\"signedPrefix\":\"127.0.0.1:5000/vendor/product\"}",
                 "127.0.0.1:5000/test/mirror:1.0", "127.0.0.1:5000/vendor/product:1.0", true},
                {"{\"type\":\"remapIdentity\",\"prefix\":\"127.0.0.1:5000/test/mirror\","
                 "\"signedPrefix\":\"127.0.0.1:5000/vendor/product\"}",
                 "127.0.0.1:5000/test/mirrorx:1.0", "127.0.0.1:5000/vendor/productx:1.0", false},
                {"{\"type\":\"remapIdentity\",\"prefix\":\"m.io\",\"signedPrefix\":\"v.io\"}",
                 "m.io/a/b:1", "v.io/a/b:1", true},
                {"{\"type\":\"remapIdentity\",\"prefix\":\"m.io\",\"signedPrefix\":\"v.io\"}",
                 "o.io/a/b:1", "o.io/a/b:1", true},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                bool m = !cases[i].match;
                _cleanup_error_ struct cc_error *err = NULL;
                assert_int_equal(img__policy_identity_test(cases[i].rule, cases[i].image,
                                                           cases[i].sig, &m, &err),
                                 0);
                if (m != cases[i].match)
                        fail_msg("case %zu: %s %s vs %s: %d", i, cases[i].rule, cases[i].image,
                                 cases[i].sig, m);
        }
}

/* ---- whole decisions with a mock signature source ---- */

#define SIGNED_BY(key, extra) \
        "{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"" key "\"" extra "}"
#define POLICY(reqs)                                                        \
        "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{" \
        "\"127.0.0.1:5000/test\":[" reqs "],"                               \
        "\"127.0.0.1:5000/test/public\":[{\"type\":\"insecureAcceptAnything\"}]}}}"
#define APP  "127.0.0.1:5000/test/app:v1"
#define APP2 "127.0.0.1:5000/test/app:v2"

static void test_check_signed_by(void **state)
{
        const char *pol = POLICY(SIGNED_BY(KAT1_KEY, ""));
        struct mock kat1 = {.simple_b64 = (const char *const[]){KAT1_SIG, NULL}};
        assert_int_equal(check(pol, APP, KAT1_DIGEST, &kat1, NULL), 0);
        /* Pull by digest: the default rule compares repositories only. */
        assert_int_equal(
                check(pol, "127.0.0.1:5000/test/app@" KAT1_DIGEST, KAT1_DIGEST, &kat1, NULL), 0);
        /* Tag substitution, another manifest, unsigned image, unknown key. */
        expect_reject(pol, APP2, KAT1_DIGEST, &kat1, "identity mismatch");
        expect_reject(pol, APP, KAT2_DIGEST, &kat1, "digest mismatch");
        struct mock none = {0};
        expect_reject(pol, APP, KAT1_DIGEST, &none,
                      "scope 127.0.0.1:5000/test, requirement 1 (signedBy): no signature");
        struct mock rsa = {.simple_b64 = (const char *const[]){RSA_SIG, NULL}};
        expect_reject(pol, APP, KAT1_DIGEST, &rsa, "signature-1: unknown key");
        /* Several signatures: one valid suffices; all invalid lists every reason. */
        struct mock two = {.simple_b64 = (const char *const[]){RSA_SIG, KAT1_SIG, NULL}};
        assert_int_equal(check(pol, APP, KAT1_DIGEST, &two, NULL), 0);
        expect_reject(pol, APP2, KAT1_DIGEST, &two,
                      "None of the signatures were accepted, reasons: signature-1: unknown key");
        /* keyPaths-like: both keys trusted via two requirements / one keyring. */
        const char *both = POLICY(SIGNED_BY(KAT1_KEY, "") "," SIGNED_BY(RSA_PUB, ""));
        assert_int_equal(check(both, APP, KAT1_DIGEST, &two, NULL), 0);
        expect_reject(both, APP, KAT1_DIGEST, &kat1,
                      "requirement 2 (signedBy): signature-1: "
                      "unknown key");
        /* Reject default, accept-anything scope beating the broader signedBy scope. */
        expect_reject(pol, "127.0.0.1:5000/other/thing:v1", KAT1_DIGEST, &none,
                      "scope default, requirement 1 (reject): Running image "
                      "docker://127.0.0.1:5000/other/thing:v1 is rejected by policy.");
        assert_int_equal(check(pol, "127.0.0.1:5000/test/public:v1", KAT1_DIGEST, &none, NULL), 0);
        /* remapIdentity and exactReference. */
        const char *remap = POLICY(SIGNED_BY(
                KAT1_KEY,
                ",\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":"
                "\"127.0.0.1:5000/test/mirror\",\"signedPrefix\":\"127.0.0.1:5000/test/app\"}"));
        assert_int_equal(check(remap, "127.0.0.1:5000/test/mirror:v1", KAT1_DIGEST, &kat1, NULL),
                         0);
        expect_reject(remap, "127.0.0.1:5000/test/mirror:v2", KAT1_DIGEST, &kat1,
                      "identity mismatch");
        const char *exact =
                POLICY(SIGNED_BY(KAT1_KEY, ",\"signedIdentity\":{\"type\":\"exactReference\","
                                           "\"dockerReference\":\"" APP "\"}"));
        assert_int_equal(check(exact, "127.0.0.1:5000/test/other:v9", KAT1_DIGEST, &kat1, NULL), 0);
        /* A source failure is an error, not "unsigned". */
        struct mock broken = {.simple_rc = -EIO};
        expect_reject(pol, APP, KAT1_DIGEST, &broken, "lookaside HTTP 500");
        /* Unimplemented keyType and no usable key. */
        const char *x509 = POLICY("{\"type\":\"signedBy\",\"keyType\":\"X509Certificates\","
                                  "\"keyData\":\"AAAA\"}");
        expect_reject(x509, APP, KAT1_DIGEST, &kat1, "Unimplemented \"keyType\" value");
        const char *nokey = POLICY(SIGNED_BY("AAAA", ""));
        expect_reject(nokey, APP, KAT1_DIGEST, &kat1, "No public keys imported");
        /* The source is not consulted for insecureAcceptAnything or reject. */
        struct mock counted = {0};
        check(pol, "127.0.0.1:5000/other/thing:v1", KAT1_DIGEST, &counted, NULL);
        assert_int_equal(counted.calls, 0);
}

/* Makes directory `dir` (a mkdtemp template) with KAT1's key as key.gpg (its path in path);
 * returns a policy whose default is signedBy with the key members `before` path `after`. */
static char *key_file(char *dir, char *path, size_t size, const char *before, const char *after)
{
        assert_non_null(mkdtemp(dir));
        snprintf(path, size, "%s/key.gpg", dir);
        size_t len;
        _cleanup_free_ uint8_t *key = unb64(KAT1_KEY, &len);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(key, 1, len, f), len);
        fclose(f);
        char *pol = NULL;
        assert_true(
                asprintf(&pol,
                         "{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",%s%s%s}]}",
                         before, path, after) > 0);
        return pol;
}

static void test_check_key_file(void **state)
{
        char dir[] = "/tmp/test-img-sig.XXXXXX", path[64];
        _cleanup_free_ char *pol =
                key_file(dir, path, sizeof(path), "\"keyPaths\":[\"/nonexistent\",\"", "\"]");
        struct mock kat1 = {.simple_b64 = (const char *const[]){KAT1_SIG, NULL}};
        expect_reject(pol, APP, KAT1_DIGEST, &kat1, "/nonexistent");
        free(pol);
        assert_true(asprintf(&pol,
                             "{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\","
                             "\"keyPath\":\"%s\"}]}",
                             path) > 0);
        assert_int_equal(check(pol, APP, KAT1_DIGEST, &kat1, NULL), 0);
        unlink(path);
        rmdir(dir);
}

#define SIGSTORE(key, extra) "{\"type\":\"sigstoreSigned\",\"keyData\":\"" key "\"" extra "}"
#define COSIGNED             "127.0.0.1:5000/test/cosigned:v1"

static void test_check_sigstore(void **state)
{
        _cleanup_free_ char *k1 = img__b64_encode((const uint8_t *)KAT2_K1, strlen(KAT2_K1));
        _cleanup_free_ char *pol = NULL;
        assert_true(asprintf(&pol, "{\"default\":[" SIGSTORE("%s", "") "]}", k1) > 0);
        /* Layer 1 by K2 (foreign), layer 2 by K1: accepted through layer 2. */
        struct mock both = {.sigstore = (const char *const[]){KAT2_PAYLOAD, KAT2_SIG_K2,
                                                              KAT2_PAYLOAD, KAT2_SIG_K1},
                            .n_sigstore = 2};
        assert_int_equal(check(pol, COSIGNED, KAT2_DIGEST, &both, NULL), 0);
        struct mock foreign = {.sigstore = (const char *const[]){KAT2_PAYLOAD, KAT2_SIG_K2},
                               .n_sigstore = 1};
        expect_reject(pol, COSIGNED, KAT2_DIGEST, &foreign,
                      "layer 1: bad signature or unknown key");
        struct mock none = {0};
        expect_reject(pol, COSIGNED, KAT2_DIGEST, &none, "no signature");
        expect_reject(pol, "127.0.0.1:5000/test/cosigned:v2", KAT2_DIGEST, &both,
                      "identity mismatch");
        expect_reject(pol, COSIGNED, KAT1_DIGEST, &both, "digest mismatch");
        struct mock noann = {.sigstore = (const char *const[]){KAT2_PAYLOAD, NULL},
                             .n_sigstore = 1};
        expect_reject(pol, COSIGNED, KAT2_DIGEST, &noann,
                      "missing dev.cosignproject.cosign/signature annotation");
        struct mock noblob = {.sigstore = (const char *const[]){NULL, KAT2_SIG_K1},
                              .n_sigstore = 1};
        expect_reject(pol, COSIGNED, KAT2_DIGEST, &noblob, "does not match its descriptor");
        /* The PEM text itself as keyData (image-rs style) works as well. */
        const char *raw = "{\"default\":[" SIGSTORE("-----BEGIN PUBLIC KEY-----\\n"
                                                    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETTp+ULNtr"
                                                    "ILUWrAzn1NDkvG++dGq\\nbC7DcLS5JObf6q5LIJqU1LR0"
                                                    "WMPgSqYa8fp8P/6c+jw/vDoJx404tAVZAA==\\n"
                                                    "-----END PUBLIC KEY-----\\n",
                                                    "") "]}";
        assert_int_equal(check(raw, COSIGNED, KAT2_DIGEST, &both, NULL), 0);

        /* KAT 3: a cosign payload names the repository only. */
        _cleanup_free_ char *k3 = img__b64_encode((const uint8_t *)KAT3_KEY, strlen(KAT3_KEY));
        _cleanup_free_ char *p3 = NULL, *p3r = NULL;
        assert_true(asprintf(&p3, "{\"default\":[" SIGSTORE("%s", "") "]}", k3) > 0);
        assert_true(asprintf(&p3r,
                             "{\"default\":[" SIGSTORE("%s", ",\"signedIdentity\":{\"type\":"
                                                             "\"matchRepository\"}") "]}",
                             k3) > 0);
        struct mock kat3 = {.sigstore = (const char *const[]){KAT3_PAYLOAD, KAT3_SIG},
                            .n_sigstore = 1};
        const char *img3 = "192.168.64.2:5000/cosign-signed-single-sample:latest";
        expect_reject(p3, img3, KAT3_DIGEST, &kat3, "identity mismatch");
        assert_int_equal(check(p3r, img3, KAT3_DIGEST, &kat3, NULL), 0);
}

static void test_sigstore_verify(void **state)
{
        const uint8_t *p = (const uint8_t *)KAT2_PAYLOAD;
        size_t n = strlen(KAT2_PAYLOAD);
        assert_int_equal(n, 303);
        assert_int_equal(img__sigstore_verify((const uint8_t *)KAT2_K1, strlen(KAT2_K1), p, n,
                                              KAT2_SIG_K1, NULL),
                         0);
        assert_int_equal(img__sigstore_verify((const uint8_t *)KAT2_K2, strlen(KAT2_K2), p, n,
                                              KAT2_SIG_K2, NULL),
                         0);
        assert_int_equal(img__sigstore_verify((const uint8_t *)KAT2_K1, strlen(KAT2_K1), p, n,
                                              KAT2_SIG_K2, NULL),
                         -EBADMSG);
        /* One payload character changed. */
        _cleanup_free_ char *t = strdup(KAT2_PAYLOAD);
        t[50] ^= 1;
        assert_int_equal(img__sigstore_verify((const uint8_t *)KAT2_K1, strlen(KAT2_K1),
                                              (uint8_t *)t, n, KAT2_SIG_K1, NULL),
                         -EBADMSG);
        /* Non-canonical base64 (padding dropped) and a wrapped annotation. */
        _cleanup_free_ char *nopad = strndup(KAT2_SIG_K1, strlen(KAT2_SIG_K1) - 2);
        assert_int_equal(
                img__sigstore_verify((const uint8_t *)KAT2_K1, strlen(KAT2_K1), p, n, nopad, NULL),
                -EBADMSG);
        _cleanup_free_ char *wrapped = NULL;
        assert_true(asprintf(&wrapped, "%.40s\n%s", KAT2_SIG_K1, KAT2_SIG_K1 + 40) > 0);
        assert_int_equal(img__sigstore_verify((const uint8_t *)KAT2_K1, strlen(KAT2_K1), p, n,
                                              wrapped, NULL),
                         0);
        assert_int_equal(img__sigstore_verify((const uint8_t *)KAT3_KEY, strlen(KAT3_KEY),
                                              (const uint8_t *)KAT3_PAYLOAD, strlen(KAT3_PAYLOAD),
                                              KAT3_SIG, NULL),
                         0);
}

/* Keys of each supported type made here with OpenSSL, signed as containers/image signs
 * (SHA-256 for EC and RSA, pure Ed25519), checked through the PEM reader's fast path (P-256,
 * P-384, Ed25519) and OpenSSL's generic one (RSA). */
static void test_sigstore_key_types(void **state)
{
        static const char *const types[][2] = {
                {"EC", "P-256"}, {"EC", "P-384"}, {"ED25519", NULL}, {"RSA", NULL}};
        const char *payload = KAT2_PAYLOAD;
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                EVP_PKEY *k = types[i][1] ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", types[i][1])
                              : !strcmp(types[i][0], "RSA")
                                      ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                      : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
                assert_non_null(k);
                bool ed = !strcmp(types[i][0], "ED25519");
                EVP_MD_CTX *c = EVP_MD_CTX_new();
                uint8_t sig[1024];
                size_t sl = sizeof(sig);
                assert_int_equal(EVP_DigestSignInit(c, NULL, ed ? NULL : EVP_sha256(), NULL, k), 1);
                assert_int_equal(
                        EVP_DigestSign(c, sig, &sl, (const uint8_t *)payload, strlen(payload)), 1);
                EVP_MD_CTX_free(c);
                BIO *b = BIO_new(BIO_s_mem());
                assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
                char *pem;
                long pl = BIO_get_mem_data(b, &pem);
                _cleanup_free_ char *b64 = img__b64_encode(sig, sl);
                assert_int_equal(img__sigstore_verify((const uint8_t *)pem, (size_t)pl,
                                                      (const uint8_t *)payload, strlen(payload),
                                                      b64, NULL),
                                 0);
                assert_int_equal(img__sigstore_verify((const uint8_t *)pem, (size_t)pl,
                                                      (const uint8_t *)payload, strlen(payload) - 1,
                                                      b64, NULL),
                                 -EBADMSG);
                BIO_free(b);
                EVP_PKEY_free(k);
        }
        /* A P-256 SubjectPublicKeyInfo whose point is not on the curve. */
        _cleanup_free_ char *bad = strdup(KAT2_K1);
        char *x = strstr(bad, "ETTp");
        x[0] = 'F';
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__sigstore_verify((const uint8_t *)bad, strlen(bad),
                                              (const uint8_t *)payload, strlen(payload),
                                              KAT2_SIG_K1, &err),
                         -EINVAL);
}

static void test_sigstore_manifest(void **state)
{
        const char *m =
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
                "\"" KAT1_DIGEST "\",\"size\":227},\"layers\":["
                "{\"mediaType\":\"" IMG_MT_COSIGN_SIMPLESIGNING "\",\"digest\":\"" KAT2_DIGEST
                "\",\"size\":303,\"annotations\":{\"" IMG_COSIGN_SIG_ANNOTATION "\":\"" KAT2_SIG_K2
                "\"}},"
                "{\"mediaType\":\"application/vnd.dsse.envelope.v1+json\",\"digest\":\"" KAT2_DIGEST
                "\",\"size\":1},"
                "{\"mediaType\":\"" IMG_MT_COSIGN_SIMPLESIGNING "\",\"digest\":\"" KAT2_DIGEST
                "\",\"size\":303}]}";
        struct img_sigstore_layer *l;
        size_t n, other;
        assert_int_equal(img__sigstore_manifest_parse(IMG_MT_OCI_MANIFEST, (const uint8_t *)m,
                                                      strlen(m), &l, &n, &other, NULL),
                         0);
        assert_int_equal(n, 2);
        assert_int_equal(other, 1);
        assert_string_equal(l[0].signature_b64, KAT2_SIG_K2);
        assert_null(l[1].signature_b64);
        assert_int_equal(l[0].size, 303);
        img__sigstore_layers_free(l, n);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__sigstore_manifest_parse(IMG_MT_DOCKER_MANIFEST, (const uint8_t *)m,
                                                      strlen(m), &l, &n, &other, &err),
                         -EBADMSG);
        assert_non_null(strstr(cc_error_message(err), "unexpected MIME type"));
}

static void test_registries_d(void **state)
{
        struct img_regsd *rd = NULL;
        assert_int_equal(img__regsd_load(NULL, &rd, NULL), 0);
        assert_string_equal(img__regsd_lookaside(rd, APP), "file:///var/lib/containers/sigstore");
        assert_true(img__regsd_use_attachments(rd, APP));
        img__regsd_free(rd);
        /* A missing directory is an empty configuration (as for skopeo): no attachments. */
        assert_int_equal(img__regsd_load("/nonexistent/registries.d", &rd, NULL), 0);
        assert_false(img__regsd_use_attachments(rd, APP));
        img__regsd_free(rd);

        char dir[] = "/tmp/test-img-regsd.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char p1[64], p2[64];
        snprintf(p1, sizeof(p1), "%s/a.yaml", dir);
        snprintf(p2, sizeof(p2), "%s/b.yaml", dir);
        FILE *f = fopen(p1, "w");
        fputs("default-docker:\n  lookaside: https://sigs.example/l\n"
              "docker:\n  127.0.0.1:5000:\n    lookaside: file:///srv/host\n"
              "    use-sigstore-attachments: true\n"
              "  127.0.0.1:5000/test/app:\n    sigstore: file:///srv/app\n"
              "    lookaside-staging: file:///srv/staging\n",
              f);
        fclose(f);
        f = fopen(p2, "w");
        fputs("docker:\n  127.0.0.1:5000/test/off:\n    use-sigstore-attachments: false\n", f);
        fclose(f);
        assert_int_equal(img__regsd_load(dir, &rd, NULL), 0);
        assert_string_equal(img__regsd_lookaside(rd, APP), "file:///srv/app");
        assert_string_equal(img__regsd_lookaside(rd, "127.0.0.1:5000/test/off:v1"),
                            "file:///srv/host");
        assert_string_equal(img__regsd_lookaside(rd, "quay.io/a/b:1"), "https://sigs.example/l");
        assert_true(img__regsd_use_attachments(rd, APP));
        assert_false(img__regsd_use_attachments(rd, "127.0.0.1:5000/test/off:v1"));
        assert_false(img__regsd_use_attachments(rd, "quay.io/a/b:1"));
        img__regsd_free(rd);
        /* The same scope in two files is refused. */
        f = fopen(p2, "w");
        fputs("docker:\n  127.0.0.1:5000:\n    lookaside: file:///x\n", f);
        fclose(f);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__regsd_load(dir, &rd, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "defined twice"));
        unlink(p1);
        unlink(p2);
        rmdir(dir);

        _cleanup_free_ char *u =
                img__lookaside_url("file:///l/", "127.0.0.1:5000/test/app", KAT1_DIGEST, 2);
        assert_string_equal(u, "file:///l/test/app@sha256=82d1529f1ae3ecc9c31bd37c376090bd007f397"
                               "a43f1c21b07e71df4b4f53035/signature-2");
}

/* The lookaside as a file:// store: signature-1, -2, ... up to the first missing one. */
static void test_lookaside_file(void **state)
{
        char dir[] = "/tmp/test-img-lookaside.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *yaml = NULL, *sigdir = NULL, *cmd = NULL;
        assert_true(asprintf(&yaml, "docker:\n  127.0.0.1:5000:\n    lookaside: file://%s\n", dir) >
                    0);
        assert_true(asprintf(&sigdir, "%s/test/app@sha256=%s", dir, KAT1_DIGEST + 7) > 0);
        assert_true(asprintf(&cmd, "mkdir -p '%s'", sigdir) > 0);
        assert_int_equal(system(cmd), 0);
        _cleanup_(img__regsd_freep) struct img_regsd *rd = NULL;
        assert_int_equal(img__regsd_load(NULL, &rd, NULL), 0);
        assert_int_equal(img__regsd_add(rd, "t.yaml", (const uint8_t *)yaml, strlen(yaml), NULL),
                         0);
        struct img_sigsrc_ctx ctx = {.rd = rd, .ref = APP};
        struct img_sig_source src;
        img__sig_source_init(&src, &ctx);
        struct img_sig_blob *b = NULL;
        size_t n = 9;
        char path[512];
        /* Only signature-2: a gap at 1 ends the list before it. */
        snprintf(path, sizeof(path), "%s/signature-2", sigdir);
        FILE *f = fopen(path, "w");
        fputs("two", f);
        fclose(f);
        assert_int_equal(src.simple(src.data, KAT1_DIGEST, &b, &n, NULL), 0);
        assert_int_equal(n, 0);
        img__sig_blobs_free(b, n);
        snprintf(path, sizeof(path), "%s/signature-1", sigdir);
        f = fopen(path, "w");
        fputs("one", f);
        fclose(f);
        assert_int_equal(src.simple(src.data, KAT1_DIGEST, &b, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_string_equal(b[1].name, "signature-2");
        assert_memory_equal(b[1].data, "two", 3);
        img__sig_blobs_free(b, n);
        /* Read ahead for a pinned digest (pull.c, CRI's tag@digest): the same list; another
         * digest is read as before; a scope that needs no signature reads nothing ahead. */
        const char *pol = POLICY(SIGNED_BY(KAT1_KEY, ""));
        _cleanup_(img__policy_freep) struct img_policy *p = NULL;
        assert_int_equal(img__policy_load((const uint8_t *)pol, strlen(pol), NULL, &p, NULL), 0);
        struct img_sigsrc_ctx pctx = {.rd = rd, .ref = APP};
        img__sig_prefetch_start(&pctx, p, KAT1_DIGEST);
        assert_non_null(pctx.prefetch);
        struct img_sig_source psrc;
        img__sig_source_init(&psrc, &pctx);
        assert_int_equal(psrc.simple(psrc.data, KAT1_DIGEST, &b, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(b[0].data, "one", 3);
        img__sig_blobs_free(b, n);
        assert_int_equal(psrc.simple(psrc.data, KAT2_DIGEST, &b, &n, NULL), 0);
        assert_int_equal(n, 0);
        img__sig_blobs_free(b, n);
        img__sig_prefetch_end(&pctx);
        assert_null(pctx.prefetch);
        struct img_sigsrc_ctx other = {.rd = rd, .ref = "127.0.0.1:5000/other/thing:v1"};
        img__sig_prefetch_start(&other, p, KAT1_DIGEST);
        assert_null(other.prefetch);
        /* More than 128: an error, not a longer list. */
        for (int i = 3; i <= 129; i++) {
                snprintf(path, sizeof(path), "%s/signature-%d", sigdir, i);
                f = fopen(path, "w");
                fclose(f);
        }
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(src.simple(src.data, KAT1_DIGEST, &b, &n, &err), -E2BIG);
        assert_non_null(strstr(cc_error_message(err), "unreasonable"));
        /* No registry: no sigstore attachments. */
        struct img_sigstore_sig *ss = NULL;
        assert_int_equal(src.sigstore(src.data, KAT1_DIGEST, &ss, &n, NULL), 0);
        assert_int_equal(n, 0);
        free(cmd);
        assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
        assert_int_equal(system(cmd), 0);
}

/* The registry signature extension's answer. */
static void test_xrss_parse(void **state)
{
        const char *j =
                "{\"signatures\":[{\"schemaVersion\":2,\"name\":\"x@1\",\"type\":\"atomic\","
                "\"content\":\"b25l\"},{\"schemaVersion\":1,\"type\":\"atomic\",\"content\":"
                "\"AAAA\"},{\"schemaVersion\":2,\"type\":\"other\",\"content\":\"AAAA\"},"
                "{\"schemaVersion\":2,\"type\":\"atomic\",\"content\":\"dHdv\"}]}";
        struct img_sig_blob *b;
        size_t n;
        assert_int_equal(img__xrss_parse((const uint8_t *)j, strlen(j), &b, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(b[0].data, "one", 3);
        assert_memory_equal(b[1].data, "two", 3);
        assert_string_equal(b[1].name, "signature-2 (registry extension)");
        img__sig_blobs_free(b, n);
        assert_int_equal(img__xrss_parse((const uint8_t *)"{}", 2, &b, &n, NULL), 0);
        assert_int_equal(n, 0);
        const char *bad =
                "{\"signatures\":[{\"schemaVersion\":2,\"type\":\"atomic\",\"content\":\"!\"}]}";
        assert_int_equal(img__xrss_parse((const uint8_t *)bad, strlen(bad), &b, &n, NULL),
                         -EBADMSG);
        assert_int_equal(img__xrss_parse((const uint8_t *)"{\"signatures\":1}", 16, &b, &n, NULL),
                         -EBADMSG);
}

/* Policy and key as kbs:/// resources through the offline_fs key broker (CoCo's
 * aa-offline_fs_kbc-resources.json layout), and file:// key paths. */
static void test_policy_resources(void **state)
{
        char dir[] = "/tmp/test-img-kbs.XXXXXX";
        assert_non_null(mkdtemp(dir));
        const char *pol = "{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\","
                          "\"keyPath\":\"kbs:///default/gpg-public-key/test\"}]}";
        _cleanup_free_ char *pol64 = img__b64_encode((const uint8_t *)pol, strlen(pol));
        char path[128];
        snprintf(path, sizeof(path), "%s/keys.json", dir);
        FILE *f = fopen(path, "w");
        fprintf(f,
                "{\"default/security-policy/test\":\"%s\","
                "\"default/gpg-public-key/test\":\"%s\"}",
                pol64, KAT1_KEY);
        fclose(f);
        _cleanup_(img_key_broker_freep) struct img_key_broker *kb = NULL;
        assert_int_equal(img_key_broker_offline_fs(NULL, path, &kb, NULL), 0);
        _cleanup_(img__policy_freep) struct img_policy *p = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__policy_load_uri("kbs:///default/security-policy/test", kb, &p, &err),
                         0);
        struct mock kat1 = {.simple_b64 = (const char *const[]){KAT1_SIG, NULL}};
        struct img_sig_source src = {.data = &kat1, .simple = mock_simple};
        assert_int_equal(img__policy_check(p, APP, KAT1_DIGEST, NULL, &src, 0, &err), 0);
        p = img__policy_free(p);
        /* No broker: a clear error; a missing resource names it. */
        assert_int_equal(
                img__policy_load_uri("kbs:///default/security-policy/test", NULL, &p, &err),
                -ENOKEY);
        assert_int_equal(img__policy_load_uri("kbs:///default/security-policy/other", kb, &p, &err),
                         -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "default/security-policy/other"));
        unlink(path);
        rmdir(dir);
}

/* Policies prepared ahead (keys read and parsed, their code run once): the same verdicts and
 * messages; a key file read ahead is not read again; the made-up message of the warm-up gets
 * every kind of key as far as its public-key operation. */
static void test_prepared(void **state)
{
        prepare_ahead = true;
        test_check_signed_by(state);
        test_check_key_file(state);
        test_check_sigstore(state);
        prepare_ahead = false;

        char dir[] = "/tmp/test-img-sig.XXXXXX", path[64];
        _cleanup_free_ char *pol = key_file(dir, path, sizeof(path), "\"keyPath\":\"", "\"");
        _cleanup_(img__policy_freep) struct img_policy *p = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__policy_load((const uint8_t *)pol, strlen(pol), NULL, &p, &err), 0);
        img__policy_prepare(p);
        unlink(path);
        rmdir(dir);
        struct mock kat1 = {.simple_b64 = (const char *const[]){KAT1_SIG, NULL}};
        struct img_sig_source src = {.data = &kat1, .simple = mock_simple};
        assert_int_equal(img__policy_check(p, APP, KAT1_DIGEST, NULL, &src, 1800000000, &err), 0);

        _cleanup_(img__pgp_keyring_done) struct img_pgp_keyring kr = {0};
        keyring_b64(&kr, RSA_PUB);
        keyring_b64(&kr, P256_PUB);
        keyring_b64(&kr, KAT1_KEY);
        assert_int_equal(img__pgp_keyring_warm(&kr), kr.n);
        img__sigstore_pem_warm((const uint8_t *)KAT2_K1, strlen(KAT2_K1));
        img__sig_code_warm();
}

/* A multi-platform image: sigstore signatures over the index count, simple ones do not. */
static void test_check_index(void **state)
{
        _cleanup_free_ char *k1 = img__b64_encode((const uint8_t *)KAT2_K1, strlen(KAT2_K1));
        _cleanup_free_ char *pol = NULL;
        assert_true(asprintf(&pol, "{\"default\":[" SIGSTORE("%s", "") "]}", k1) > 0);
        _cleanup_(img__policy_freep) struct img_policy *p = NULL;
        assert_int_equal(img__policy_load((const uint8_t *)pol, strlen(pol), NULL, &p, NULL), 0);
        struct mock idx = {.sigstore = (const char *const[]){KAT2_PAYLOAD, KAT2_SIG_K1},
                           .n_sigstore = 1,
                           .only_digest = KAT2_DIGEST};
        struct img_sig_source src = {
                .data = &idx, .simple = mock_simple, .sigstore = mock_sigstore};
        _cleanup_error_ struct cc_error *err = NULL;
        /* Platform manifest KAT1 (unsigned), index KAT2 (signed): accepted via the index. */
        assert_int_equal(img__policy_check(p, COSIGNED, KAT1_DIGEST, KAT2_DIGEST, &src, 0, &err),
                         0);
        assert_int_equal(idx.calls, 2);
        /* Without the index digest: refused. */
        assert_int_equal(img__policy_check(p, COSIGNED, KAT1_DIGEST, NULL, &src, 0, &err), -EACCES);
        /* Simple signing: only the platform manifest's signatures are read. */
        const char *sp = POLICY(SIGNED_BY(KAT1_KEY, ""));
        _cleanup_(img__policy_freep) struct img_policy *p2 = NULL;
        assert_int_equal(img__policy_load((const uint8_t *)sp, strlen(sp), NULL, &p2, NULL), 0);
        struct mock kat1 = {.simple_b64 = (const char *const[]){KAT1_SIG, NULL}};
        src.data = &kat1;
        assert_int_equal(img__policy_check(p2, APP, KAT2_DIGEST, KAT1_DIGEST, &src, 0, &err),
                         -EACCES);
        assert_non_null(strstr(cc_error_message(err), "digest mismatch"));
        assert_int_equal(kat1.calls, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kat1),
                cmocka_unit_test(test_pgp_algorithms),
                cmocka_unit_test(test_pgp_refused),
                cmocka_unit_test(test_pgp_key_state),
                cmocka_unit_test(test_simple_gate),
                cmocka_unit_test(test_payload),
                cmocka_unit_test(test_policy_load_errors),
                cmocka_unit_test(test_scopes),
                cmocka_unit_test(test_identity),
                cmocka_unit_test(test_check_signed_by),
                cmocka_unit_test(test_check_key_file),
                cmocka_unit_test(test_check_sigstore),
                cmocka_unit_test(test_sigstore_verify),
                cmocka_unit_test(test_sigstore_key_types),
                cmocka_unit_test(test_sigstore_manifest),
                cmocka_unit_test(test_registries_d),
                cmocka_unit_test(test_lookaside_file),
                cmocka_unit_test(test_xrss_parse),
                cmocka_unit_test(test_policy_resources),
                cmocka_unit_test(test_check_index),
                cmocka_unit_test(test_prepared),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
