/* rsbench: subcommands implemented outside rsbench.c. */
#ifndef RS_RSBENCH_H
#define RS_RSBENCH_H

/* `rsbench cluster ...`: closed-loop load on a running cluster. */
int rsbench_cluster(int argc, char **argv);

#endif /* RS_RSBENCH_H */
