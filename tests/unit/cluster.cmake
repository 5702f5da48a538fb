# Unit tests: the cluster control plane (chorus::broker_cluster), pure logic, no sockets.
chorus_test(cluster_partition_test LABEL unit SOURCES cluster_partition_test.cc
            LIBS chorus::broker_cluster)
chorus_test(cluster_assignment_test LABEL unit SOURCES cluster_assignment_test.cc
            LIBS chorus::broker_cluster)
chorus_test(cluster_map_test LABEL unit SOURCES cluster_map_test.cc cluster_map_codec_test.cc
            LIBS chorus::broker_cluster)
chorus_test(cluster_controller_test LABEL unit SOURCES cluster_controller_test.cc
            LIBS chorus::broker_cluster)
