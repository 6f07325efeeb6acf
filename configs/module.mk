# configs/: data (runtime configurations, containerd fragments, Kubernetes manifests) and the
# installer tools/cc-deploy; nothing to build. Its integration test runs against scratch
# containerd configs and a private containerd.
INTEGRATION_TESTS += test/integration/deploy-installer.sh
INTEGRATION_TESTS += test/integration/e2e-cri.sh
INTEGRATION_TESTS += test/integration/e2e-cri-policy.sh
INTEGRATION_TESTS += test/integration/e2e-emptydir.sh
INTEGRATION_TESTS += test/integration/e2e-exec.sh
INTEGRATION_TESTS += test/integration/e2e-console.sh
INTEGRATION_TESTS += test/integration/e2e-pods.sh
INTEGRATION_TESTS += test/integration/e2e-configs.sh
INTEGRATION_TESTS += test/integration/e2e-bootfail.sh
INTEGRATION_TESTS += test/integration/e2e-guest-pull.sh
INTEGRATION_TESTS += test/integration/e2e-encrypted.sh
# The installer's config merge (tools/cc_deploy_toml.py): its rules and the golden files of
# test/golden/deploy/ (containerd config versions 1, 2 and 3). A Python unittest program, run
# like the cmocka ones.
UNIT_TESTS += test/unit/test-cc-deploy-toml.py
