// F2: infinite loop on every CPU with IRQs and preemption on. The kernel hangs only if it
// cannot preempt kernel code (preempt=none or voluntary): with preempt=full the scheduler
// takes the CPUs back and the guest stays usable, only slow.
#include <linux/module.h>
#include "grass_fault.h"

GRASS_FAULT_DELAY_PARAM;

static int grass_f2_thread(void *data)
{
	grass_fault_delay();
	for (;;)
		cpu_relax();
	return 0;
}

static int __init grass_f2_init(void)
{
	pr_emerg("grass fault F2: infinite loop on all CPUs, IRQs on, preemption on\n");
	grass_start_on_each_cpu(grass_f2_thread, "grass_f2/%u");
	return 0;
}
module_init(grass_f2_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GRASS testbed fault F2: infinite loop on all CPUs (preemptible)");
