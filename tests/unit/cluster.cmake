# Unit tests: the cluster control plane (chorus::broker_cluster), pure logic, no sockets.
chorus_test(cluster_partition_test LABEL unit SOURCES cluster_partition_test.cc
            LIBS chorus::broker_cluster)
chorus_test(cluster_assignment_test LABEL unit SOURCES cluster_assignment_test.cc
            LIBS chorus::broker_cluster)
chorus_test(cluster_map_test LABEL unit SOURCES cluster_map_test.cc cluster_map_codec_test.cc
            LIBS chorus::broker_cluster)
chorus_test(cluster_controller_test LABEL unit SOURCES cluster_controller_test.cc
            LIBS chorus::broker_cluster)
# Issue 12 test 7: the control plane on libraft's deterministic in-memory fixture (about 5 s per
# test on one core: label fault).
chorus_test(cluster_meta_fixture_test LABEL fault TIMEOUT 120 SOURCES cluster_meta_fixture_test.cc
            cluster_meta_sim.cc LIBS chorus::broker_cluster_raft)
