/*
 * onesift_guard: onesift.tenant, the tenant a transaction works in, as a
 * parameter that only roles granted SET on it may set.
 *
 * Without this module onesift.tenant is a placeholder parameter, which any
 * role may SET, at session level too. The app role could then name any
 * tenant, and a value set at session level stays on a pooled server
 * connection for the next client (hardening issue 8: 271,959 foreign rows
 * in one 10-second PgBouncer run). Defined here as PGC_SUSET, it can be set
 * only by a superuser or a role granted SET ON PARAMETER onesift.tenant
 * (PostgreSQL 15+): the deploy grants it to the owner, whose SECURITY
 * DEFINER function system.enter_tenant sets it for the current transaction
 * only. The RLS policies then compare it with the tenant's slug, which costs
 * what an unchecked setting costs (bench/run.py); checking a keyed proof
 * of the setting in SQL instead cost 1.2-1.4x on an indexed tenant query.
 *
 * Load it with shared_preload_libraries, so the parameter is defined in every
 * backend before any client can make a placeholder of the same name.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static char *tenant = NULL;

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errmsg("onesift_guard must be loaded with shared_preload_libraries")));

	DefineCustomStringVariable("onesift.tenant",
							   "The tenant the current transaction works in.",
							   "Set by system.use_tenant for one transaction; only roles granted SET on it may set it.",
							   &tenant,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
}
