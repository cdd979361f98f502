/* Shared by the testbed's fault modules: start one kernel thread bound to each online CPU. */
#ifndef GRASS_FAULT_H
#define GRASS_FAULT_H
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/moduleparam.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/sched.h>

/*
 * delay_ms: the fault threads wait this long before the fault starts, so that insmod returns and
 * the host can still read the module's symbols (/proc/kallsyms) before the guest stops answering.
 */
#define GRASS_FAULT_DELAY_PARAM \
	static unsigned int delay_ms; \
	module_param(delay_ms, uint, 0444); \
	MODULE_PARM_DESC(delay_ms, "wait this long before the fault starts")
#define grass_fault_delay() msleep(delay_ms)

/* Starts fn(cpu) on every online CPU; returns how many threads were started. */
static inline int grass_start_on_each_cpu(int (*fn)(void *), const char *name)
{
	unsigned int cpu;
	int started = 0;

	for_each_online_cpu(cpu) {
		struct task_struct *t = kthread_create_on_cpu(fn, (void *)(unsigned long)cpu, cpu, name);

		if (IS_ERR(t)) {
			pr_err("grass fault: cannot start %s on CPU %u: %ld\n", name, cpu, PTR_ERR(t));
			continue;
		}
		wake_up_process(t);
		started++;
	}
	return started;
}
#endif
