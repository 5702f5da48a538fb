# Integration tests of the cluster control plane: MetaGroup members over raft_uv_tcp on loopback.
chorus_test(cluster_meta_uv_test LABEL integration SOURCES cluster_meta_uv_test.cc
            LIBS chorus::broker_cluster_raft)
