'use strict';
// The OneSift database README's contract, checked from the application's own
// language: node-postgres, as the app's src/db/*.ts use it. Each helper below
// is a README function (createCustomer, validateApiKey, ...) written the
// obvious way against the SQL the README names; a test fails on any
// difference in a table name, enum value, function signature or result shape.
//
// Run by tests/e2e/test_contract.py in a container with Debian's nodejs and
// node-pg. Connection: PGHOST, PGPORT, PGDATABASE; roles and passwords:
// ONESIFT_{OWNER,APP}_ROLE, ONESIFT_{OWNER,APP}_PASSWORD (environment only).

const test = require('node:test');
const assert = require('node:assert/strict');
const { Pool } = require('pg');

// The README, "Enums".
const INGESTION_MODE = ['email', 'api'];
const LEAD_STATUS = ['new', 'processing', 'responded', 'qualified', 'handed_off', 'error'];
const MESSAGE_SENDER = ['customer', 'ai', 'system'];
// The README, "Key Functions", with the argument types the app passes.
const SIGNATURES = [
  'system.create_customer_schema(uuid, text)',
  'system.get_customer_schema(uuid)',
  'system.generate_api_key()',
  'system.hash_api_key(text)',
  'system.validate_api_key(text)',
  'system.create_customer_analytics_views(text)',
  'system.cleanup_old_data(text, integer)',
  'system.get_customer_storage_size(text)',
  'system.backup_customer_data(uuid)',
];
const TENANT_TABLES = ['personas', 'leads', 'conversations', 'messages', 'handoffs'];

function pool(role) {
  const key = role.toUpperCase();
  return new Pool({
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT),
    database: process.env.PGDATABASE || 'onesift',
    user: process.env[`ONESIFT_${key}_ROLE`] || `onesift_${role}`,
    password: process.env[`ONESIFT_${key}_PASSWORD`],
    max: 2,
  });
}

const owner = pool('owner');
const app = pool('app');

async function inTransaction(db, work) {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  } finally {
    client.release();
  }
}

// --- The README's functions (seed.ts, customer-schema.ts) -----------------

async function insertCustomer(client, { slug, name, ingestionMode, handoverEmail, handoverThreshold }) {
  const { rows } = await client.query(
    `INSERT INTO system.customers (slug, name, ingestion_mode, handover_email, handover_threshold)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [slug, name, ingestionMode, handoverEmail ?? null, handoverThreshold]);
  return rows[0].id;
}

async function createCustomer(customer) {
  return inTransaction(owner, async (client) => {
    const customerId = await insertCustomer(client, customer);
    await client.query('SELECT system.create_customer_schema($1, $2)', [customerId, customer.slug]);
    let apiKey;
    if (customer.ingestionMode === 'api') {
      ({ rows: [{ api_key: apiKey }] } = await client.query(
        'SELECT api_key FROM system.create_api_key($1)', [customerId]));
    }
    return { customerId, apiKey };
  });
}

async function createCustomerSchema({ customerId, slug }) {
  const { rows } = await owner.query('SELECT system.create_customer_schema($1, $2) AS schema', [customerId, slug]);
  return rows[0].schema;
}

async function getCustomerSchema(customerId) {
  const { rows } = await owner.query('SELECT system.get_customer_schema($1) AS schema', [customerId]);
  return rows[0].schema;
}

async function validateApiKey(key) {
  const { rows } = await app.query(
    'SELECT is_valid AS "isValid", customer_id AS "customerId" FROM system.validate_api_key($1)', [key]);
  return rows[0];
}

async function cleanupCustomerData(customerId, days) {
  const schema = await getCustomerSchema(customerId);
  const { rows } = await owner.query('SELECT system.cleanup_old_data($1, $2) AS deleted', [schema, days]);
  return rows[0].deleted;
}

async function getCustomerStorageSize(customerId) {
  const schema = await getCustomerSchema(customerId);
  const { rows } = await owner.query(
    `SELECT table_name AS "tableName", size_bytes AS "sizeBytes", size_pretty AS "sizePretty"
     FROM system.get_customer_storage_size($1)`, [schema]);
  return rows;
}

async function backupCustomerData(customerId) {
  const { rows } = await owner.query('SELECT system.backup_customer_data($1)::text AS backup', [customerId]);
  return rows[0].backup;
}

async function dropCustomer(customerId) {
  await owner.query('SELECT system.drop_customer_schema($1)', [customerId]);
}

// --- The contract ----------------------------------------------------------

const run = Date.now().toString(36);
const made = [];

test('the README contract, from node-postgres', async (t) => {
  try {
    await t.test('enums hold exactly the README values', async () => {
      const { rows: [r] } = await app.query(`SELECT
          enum_range(NULL::system.ingestion_mode)::text[] AS ingestion_mode,
          enum_range(NULL::system.lead_status)::text[] AS lead_status,
          enum_range(NULL::system.message_sender)::text[] AS message_sender,
          enum_range(NULL::system.handoff_reason)::text[] AS handoff_reason`);
      assert.deepEqual(r.ingestion_mode, INGESTION_MODE);
      assert.deepEqual(r.lead_status, LEAD_STATUS);
      assert.deepEqual(r.message_sender, MESSAGE_SENDER);
      assert.ok(r.handoff_reason.length > 0);
    });

    await t.test('every README function signature exists', async () => {
      for (const signature of SIGNATURES) {
        const { rows: [r] } = await owner.query('SELECT to_regprocedure($1) IS NOT NULL AS found', [signature]);
        assert.equal(r.found, true, signature);
      }
    });

    const api = { slug: `ct-api-${run}`, name: 'Contract API Motors', ingestionMode: 'api',
                  handoverEmail: 'sales@contract.example', handoverThreshold: 7 };
    let apiCustomer;
    await t.test('createCustomer with a handover threshold, and its API key', async () => {
      apiCustomer = await createCustomer(api);
      made.push(apiCustomer.customerId);
      assert.match(apiCustomer.apiKey, /^osk_[A-Za-z0-9_-]{40}$/);
      const { rows: [c] } = await owner.query(
        'SELECT handover_threshold, schema_name FROM system.customers WHERE id = $1', [apiCustomer.customerId]);
      assert.equal(c.handover_threshold, 7);
      assert.equal(c.schema_name, `tenant_${api.slug}`);
      assert.equal(await getCustomerSchema(apiCustomer.customerId), `tenant_${api.slug}`);
    });

    await t.test('createCustomerSchema for an existing customer, and only with its own slug', async () => {
      const slug = `ct-email-${run}`;
      const customerId = await inTransaction(owner, (client) => insertCustomer(client, {
        slug, name: 'Contract Email Motors', ingestionMode: 'email',
        handoverEmail: 'sarah@contract.example', handoverThreshold: 3 }));
      made.push(customerId);
      await assert.rejects(createCustomerSchema({ customerId, slug: `${slug}-x` }), { code: '22023' });
      assert.equal(await createCustomerSchema({ customerId, slug }), `tenant_${slug}`);
      const { rows } = await owner.query(
        'SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1', [`tenant_${slug}`]);
      assert.equal(rows[0].n, TENANT_TABLES.length);
    });

    await t.test('validateApiKey tells valid from invalid and yields the customer id', async () => {
      assert.deepEqual(await validateApiKey(apiCustomer.apiKey),
                       { isValid: true, customerId: apiCustomer.customerId });
      assert.deepEqual(await validateApiKey(`${apiCustomer.apiKey}x`), { isValid: false, customerId: null });
      assert.deepEqual(await validateApiKey('osk_not-a-key'), { isValid: false, customerId: null });
    });

    await t.test('as the app: a lead with every lead_status, a message from every message_sender', async () => {
      // The app reads no other tenant's row: the key's own validation names
      // its tenant, and current_customer() is that tenant's row alone.
      const { rows: [key] } = await app.query(
        'SELECT customer_id, slug FROM system.validate_api_key($1)', [apiCustomer.apiKey]);
      const schema = await getCustomerSchema(key.customer_id);
      const seen = await inTransaction(app, async (client) => {
        const { rows: [{ use_tenant: chosen }] } = await client.query('SELECT system.use_tenant($1)', [key.slug]);
        assert.equal(chosen, schema);
        const { rows: me } = await client.query('SELECT id, handover_threshold FROM system.current_customer()');
        assert.deepEqual(me, [{ id: key.customer_id, handover_threshold: 7 }]);
        const lead = { rows: [] };
        for (const [i, status] of LEAD_STATUS.entries()) {
          const { rows } = await client.query(
            'INSERT INTO leads (email, status) VALUES ($1, $2) RETURNING id', [`lead${i}@contract.example`, status]);
          lead.rows.push(rows[0].id);
        }
        const { rows: [conv] } = await client.query(
          'INSERT INTO conversations (lead_id, channel) VALUES ($1, $2) RETURNING id', [lead.rows[0], 'api']);
        for (const sender of MESSAGE_SENDER) {
          await client.query('INSERT INTO messages (conversation_id, sender, body) VALUES ($1, $2, $3)',
                             [conv.id, sender, `from ${sender}`]);
        }
        // Old messages for cleanupCustomerData below.
        await client.query(`INSERT INTO messages (conversation_id, sender, body, created_at)
                            VALUES ($1, 'ai', 'old', now() - interval '100 days'),
                                   ($1, 'customer', 'old', now() - interval '95 days')`, [conv.id]);
        const statuses = await client.query('SELECT l.status::text FROM leads l ORDER BY l.status');
        const senders = await client.query('SELECT m.sender::text FROM messages m GROUP BY m.sender ORDER BY m.sender');
        const funnel = await client.query('SELECT f.status::text, f.leads::int FROM lead_funnel f ORDER BY f.status');
        return { statuses: statuses.rows.map((r) => r.status), senders: senders.rows.map((r) => r.sender),
                 funnel: funnel.rows };
      });
      assert.deepEqual(seen.statuses, LEAD_STATUS);
      assert.deepEqual(seen.senders, MESSAGE_SENDER);
      assert.deepEqual(seen.funnel, LEAD_STATUS.map((status) => ({ status, leads: 1 })));
    });

    await t.test('cleanupCustomerData returns the deleted count', async () => {
      assert.equal(await cleanupCustomerData(apiCustomer.customerId, 90), 2);
      assert.equal(await cleanupCustomerData(apiCustomer.customerId, 90), 0);
    });

    await t.test('a schema_name that is not a registered tenant is refused', async () => {
      for (const schema of ['system', 'public', 'tenant_nobody', '']) {
        await assert.rejects(owner.query('SELECT system.cleanup_old_data($1, 90)', [schema]), { code: '3F000' });
        await assert.rejects(owner.query('SELECT * FROM system.get_customer_storage_size($1)', [schema]),
                             { code: '3F000' });
        await assert.rejects(owner.query('SELECT system.create_customer_analytics_views($1)', [schema]),
                             { code: '3F000' });
      }
    });

    await t.test('getCustomerStorageSize yields tableName and sizePretty per table', async () => {
      const sizes = await getCustomerStorageSize(apiCustomer.customerId);
      assert.deepEqual(sizes.map((s) => s.tableName).sort(), [...TENANT_TABLES].sort());
      for (const s of sizes) {
        assert.match(s.sizePretty, /^\d+ (bytes|kB|MB|GB)$/);
        assert.ok(Number(s.sizeBytes) > 0);
      }
    });

    await t.test('createCustomerAnalyticsViews by schema name', async () => {
      const schema = await getCustomerSchema(apiCustomer.customerId);
      await owner.query('SELECT system.create_customer_analytics_views($1)', [schema]);
    });

    await t.test('backupCustomerData gives a JSON string with all the customer data', async () => {
      const backup = JSON.parse(await backupCustomerData(apiCustomer.customerId));
      assert.equal(backup.customer.id, apiCustomer.customerId);
      assert.equal(backup.customer.handover_threshold, 7);
      assert.deepEqual(Object.keys(backup.tables).sort(), [...TENANT_TABLES].sort());
      assert.equal(backup.tables.leads.length, LEAD_STATUS.length);
      assert.equal(backup.tables.messages.length, MESSAGE_SENDER.length);
    });
  } finally {
    for (const id of made) await dropCustomer(id).catch(() => {});
    await owner.end();
    await app.end();
  }
});
