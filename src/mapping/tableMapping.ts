/**
 * AWS DMS table-mapping JSON, as DMS users write it, compiled into one
 * TableMapping per selected source table. Supported: `selection` rules
 * (include/exclude, `%` wildcards), `object-mapping` with
 * `map-record-to-record` and `map-record-to-document`, `partition-key-name`,
 * `sort-key-name`, `exclude-columns`, `attribute-mappings` (`${column}`
 * templates, `attribute-sub-type`), plus ferry's own `group-records-to-item`
 * (many rows folded into one item). docs/transform.md describes each field.
 */
import { z } from 'zod';
import { closedObject } from '../closedObject.js';

/** A name the rule cannot do without: its absence says which key to add. */
const requiredName = (what: string) => z.string({ error: (issue) => (issue.input === undefined ? `required: ${what}` : undefined) }).min(1);

const objectLocator = closedObject({
  'schema-name': requiredName('the source schema (database), "%" for any'),
  'table-name': requiredName('the source table, "%" for any'),
});

const attributeMapping = closedObject({
  'target-attribute-name': requiredName('the attribute this mapping writes'),
  'attribute-type': z.enum(['scalar', 'document']).default('scalar'),
  'attribute-sub-type': z.enum(['string', 'number', 'binary', 'boolean', 'dynamodb-map']).default('string'),
  value: z.union([z.string(), z.record(z.string(), z.unknown())], { error: 'expected a "${column}" template string, or a map of them (attribute-sub-type "dynamodb-map")' }),
});

const ruleIdentity = {
  'rule-id': z.union([z.string(), z.number()]).optional(),
  'rule-name': z.union([z.string(), z.number()]).optional(),
};

const selectionRule = closedObject({
  'rule-type': z.literal('selection'),
  ...ruleIdentity,
  'object-locator': objectLocator,
  'rule-action': z.enum(['include', 'exclude', 'explicit']),
  filters: z.array(z.unknown()).max(0, 'selection filters are not supported by ferry: filter with a view in the source').optional(),
});

const keyAndAttributes = {
  'partition-key-name': requiredName('the item\'s partition key attribute (a column or an attribute-mappings target)'),
  'sort-key-name': z.string().min(1).optional(),
  'exclude-columns': z.array(z.string()).default([]),
  'attribute-mappings': z.array(attributeMapping).default([]),
};

const objectMappingRule = closedObject({
  'rule-type': z.literal('object-mapping'),
  ...ruleIdentity,
  'rule-action': z.enum(['map-record-to-record', 'map-record-to-document']),
  'object-locator': objectLocator,
  'target-table-name': z.string().min(3).max(255).optional(),
  'mapping-parameters': closedObject(keyAndAttributes),
});

const groupRule = closedObject({
  'rule-type': z.literal('object-mapping'),
  ...ruleIdentity,
  'rule-action': z.literal('group-records-to-item'),
  'object-locator': objectLocator,
  'target-table-name': z.string().min(3).max(255).optional(),
  'mapping-parameters': closedObject({
    ...keyAndAttributes,
    /** Each row contributes one attribute: named by this column's value… */
    'attribute-name-column': requiredName('the column whose value names each row\'s attribute'),
    /** …holding this column's value. */
    'attribute-value-column': requiredName('the column whose value fills each row\'s attribute'),
  }),
});

/** DMS rule types ferry does not run: refused with what to use instead (their other keys are not looked at). */
const unsupportedRule = z
  .looseObject({ 'rule-type': z.enum(['transformation', 'table-settings']) })
  .refine(() => false, { message: 'transformation and table-settings rules are not supported by ferry: use the spec\'s "sql" (row-local DuckDB SQL) instead' });

const choices = (values: readonly unknown[]) => values.map((v) => JSON.stringify(v)).join(', ');

/** Each rule is checked against its own rule type (and, for object-mapping, its rule-action), so its errors are its own. */
const rule = z.discriminatedUnion(
  'rule-type',
  [
    selectionRule,
    z.discriminatedUnion('rule-action', [groupRule, objectMappingRule], {
      error: (issue) =>
        issue.code === 'invalid_union' && 'options' in issue
          ? `expected, for an object-mapping rule, one of ${choices(issue.options as unknown[])}`
          : undefined,
    }),
    unsupportedRule,
  ],
  {
    error: (issue) => {
      // zod's types name only invalid_union here, but an input that is not an object arrives as invalid_type.
      if ((issue.code as string) === 'invalid_type') return 'expected a rule: an object with "rule-type"';
      if (issue.code === 'invalid_union' && 'options' in issue) return `expected one of ${choices(issue.options as unknown[])}`;
      return undefined;
    },
  },
);

export const tableMappingDocument = closedObject({
  rules: z.array(rule).min(1, 'a table mapping needs at least one selection rule'),
});

export type TableMappingDocument = z.input<typeof tableMappingDocument>;
type ParsedDocument = z.output<typeof tableMappingDocument>;
type AttributeMappingRule = z.output<typeof attributeMapping>;

export type KeyType = 'S' | 'N' | 'B';

/** A target attribute computed from the row: a `${column}` template, or a nested DynamoDB map of templates. */
export interface ComputedAttribute {
  name: string;
  subType: 'string' | 'number' | 'binary' | 'boolean' | 'dynamodb-map';
  template: string | Record<string, unknown>;
}

export interface TableMapping {
  /** Source schema (database) and table. */
  schema: string;
  table: string;
  targetTable: string;
  action: 'map-record-to-record' | 'map-record-to-document' | 'group-records-to-item';
  partitionKey: string;
  sortKey?: string;
  excludeColumns: string[];
  attributes: ComputedAttribute[];
  group?: { nameColumn: string; valueColumn: string };
}

/** `%` matches any run of characters, as in DMS; matching is case-insensitive like MySQL's identifiers on most systems. */
export function likeMatches(pattern: string, name: string): boolean {
  const regex = new RegExp(`^${pattern.split('%').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return regex.test(name);
}

/** The tables a mapping selects, from the tables that exist in the source. */
export function selectTables(doc: ParsedDocument, available: { schema: string; table: string }[]): { schema: string; table: string }[] {
  const selections = doc.rules.filter((r): r is z.output<typeof selectionRule> => r['rule-type'] === 'selection');
  const matches = (rule: z.output<typeof selectionRule>, t: { schema: string; table: string }) =>
    likeMatches(rule['object-locator']['schema-name'], t.schema) && likeMatches(rule['object-locator']['table-name'], t.table);
  return available.filter(
    (t) => selections.some((r) => r['rule-action'] !== 'exclude' && matches(r, t)) && !selections.some((r) => r['rule-action'] === 'exclude' && matches(r, t)),
  );
}

/** Every `${column}` a template refers to. */
export function templateColumns(template: string | Record<string, unknown>): string[] {
  const text = typeof template === 'string' ? template : JSON.stringify(template);
  return [...text.matchAll(/\$\{([^}]+)\}/g)].map((m) => m[1]!);
}

/**
 * The object-mapping for one selected table. A table without one maps
 * record-to-record into a same-named table keyed by its primary key (one
 * column: partition key; two: partition and sort key).
 */
export function compileTableMapping(doc: ParsedDocument, schema: string, table: string, primaryKey: string[]): TableMapping {
  const rule = doc.rules.find(
    (r): r is z.output<typeof objectMappingRule> | z.output<typeof groupRule> =>
      r['rule-type'] === 'object-mapping' &&
      likeMatches((r as z.output<typeof objectMappingRule>)['object-locator']['schema-name'], schema) &&
      likeMatches((r as z.output<typeof objectMappingRule>)['object-locator']['table-name'], table),
  );
  if (!rule) {
    if (primaryKey.length > 2) {
      throw new Error(
        `table ${schema}.${table} has a ${primaryKey.length}-column primary key (${primaryKey.join(', ')}) and no object-mapping rule; ` +
          'DynamoDB keys have at most two attributes: add an object-mapping rule with "partition-key-name" built from several columns',
      );
    }
    return {
      schema,
      table,
      targetTable: table,
      action: 'map-record-to-record',
      partitionKey: primaryKey[0]!,
      sortKey: primaryKey[1],
      excludeColumns: [],
      attributes: [],
    };
  }
  const params = rule['mapping-parameters'];
  const attributes = params['attribute-mappings'].map((m: AttributeMappingRule) => ({
    name: m['target-attribute-name'],
    subType: m['attribute-type'] === 'document' ? ('dynamodb-map' as const) : m['attribute-sub-type'],
    template: m.value,
  }));
  const mapping: TableMapping = {
    schema,
    table,
    targetTable: rule['target-table-name'] ?? table,
    action: rule['rule-action'],
    partitionKey: params['partition-key-name'],
    sortKey: params['sort-key-name'],
    excludeColumns: params['exclude-columns'],
    attributes,
  };
  if (rule['rule-action'] === 'group-records-to-item') {
    const group = rule['mapping-parameters'] as z.output<typeof groupRule>['mapping-parameters'];
    mapping.group = { nameColumn: group['attribute-name-column'], valueColumn: group['attribute-value-column'] };
  }
  return mapping;
}

/** The target table's key attribute names: the partition key, then the sort key if any. */
export function keyAttributes(mapping: Pick<TableMapping, 'partitionKey' | 'sortKey'>): string[] {
  return mapping.sortKey ? [mapping.partitionKey, mapping.sortKey] : [mapping.partitionKey];
}

/** The source columns that determine an item's key: for a grouping rule, the columns a group shares. */
export function keyColumns(mapping: TableMapping): string[] {
  const columns = new Set<string>();
  for (const key of keyAttributes(mapping)) {
    const computed = mapping.attributes.find((a) => a.name === key);
    for (const c of computed ? templateColumns(computed.template) : [key]) columns.add(c);
  }
  return [...columns];
}

/**
 * The columns whose values place a row's changes on a Kinesis shard: under a
 * grouping mapping the item key (all rows of one item on one shard, applied by
 * one reader), else the primary key.
 */
export function shardKeyColumns(mapping: TableMapping, primaryKey: string[]): string[] {
  return mapping.group ? keyColumns(mapping) : primaryKey;
}

/**
 * Checks a mapping against the table it maps; returns what is wrong, each
 * naming the rule's field and the fix. Empty when the mapping is sound.
 */
export function mappingProblems(mapping: TableMapping, columns: string[], primaryKey: string[]): string[] {
  const problems: string[] = [];
  const where = `object-mapping for ${mapping.schema}.${mapping.table}`;
  const has = (c: string) => columns.includes(c);
  for (const attribute of mapping.attributes) {
    for (const c of templateColumns(attribute.template)) {
      if (!has(c)) problems.push(`${where}: attribute-mappings "${attribute.name}" refers to \${${c}}, which is not a column of the table (columns: ${columns.join(', ')})`);
    }
  }
  for (const key of [mapping.partitionKey, mapping.sortKey]) {
    if (!key) continue;
    const computed = mapping.attributes.some((a) => a.name === key);
    if (!computed && !has(key)) {
      problems.push(`${where}: key attribute "${key}" is neither a column nor an attribute-mappings target; add an attribute-mappings entry for it`);
    }
    if (!computed && mapping.excludeColumns.includes(key)) {
      problems.push(`${where}: key attribute "${key}" is listed in exclude-columns; a key cannot be excluded`);
    }
  }
  for (const c of mapping.excludeColumns) {
    if (!has(c)) problems.push(`${where}: exclude-columns names "${c}", which is not a column of the table`);
  }
  const keys = keyColumns(mapping);
  if (mapping.group) {
    const { nameColumn, valueColumn } = mapping.group;
    for (const c of [nameColumn, valueColumn]) if (!has(c)) problems.push(`${where}: "${c}" is not a column of the table`);
    const prefix = primaryKey.slice(0, keys.length);
    if (keys.length === 0 || [...keys].sort().join(',') !== [...prefix].sort().join(',') || primaryKey.length !== keys.length + 1 || primaryKey[keys.length] !== nameColumn) {
      problems.push(
        `${where}: group-records-to-item needs the item key's columns (${keys.join(', ')}) to lead the primary key (${primaryKey.join(', ')}) ` +
          `and "attribute-name-column" (${nameColumn}) to be the primary key's last column, so each row owns exactly one attribute of one item`,
      );
    }
  } else if (primaryKey.some((c) => !keys.includes(c))) {
    problems.push(
      `${where}: the item key is built from ${keys.join(', ')} but the primary key is (${primaryKey.join(', ')}); ` +
        'rows that differ only in the other primary-key columns would overwrite each other. Include every primary-key column in the key attributes',
    );
  }
  return problems;
}
