/*
 * hardened-server: a settings schema validator that generates no code.
 *
 * JupyterLab's DefaultSchemaValidator (@jupyterlab/settingregistry, settingregistry.ts) compiles
 * every plugin schema with ajv, and ajv turns each schema into JavaScript source run through
 * `new Function`: the page then needs 'unsafe-eval' in script-src, so an injection on /lab can
 * turn strings into code. This validator interprets the schemas instead (@cfworker/json-schema
 * walks schema and data; it has no eval, no Function), and reproduces what the registry relies
 * on from ajv:
 *
 * - the same two steps and the same early returns as DefaultSchemaValidator.validateData
 *   (schema root type, plugin-schema and draft-07 meta-schema checks, JSON5 parse errors, user
 *   data, then the composite with defaults);
 * - ajv's `useDefaults` (see populateDefaults): missing properties get a deep copy of their
 *   `default`, in `properties`, array-form `items`, through local `$ref` and `allOf`;
 * - ajv's error shape (ISchemaValidator.IError: keyword, instancePath, schemaPath, params,
 *   message with ajv's wording), so the settings editor shows errors as it always did;
 * - ajv's behaviour without ajv-formats (DefaultSchemaValidator installs none): `format` is not
 *   checked.
 */

import { format as cfFormats, Validator } from '@cfworker/json-schema';
import type { OutputUnit, Schema } from '@cfworker/json-schema';
import type {
  ISchemaValidator,
  ISettingRegistry
} from '@jupyterlab/settingregistry';
import type {
  JSONObject,
  JSONValue,
  ReadonlyJSONObject
} from '@lumino/coreutils';
import { JSONExt } from '@lumino/coreutils';
import * as json5 from 'json5';
import DRAFT_07 from 'ajv/dist/refs/json-schema-draft-07.json';
import PLUGIN_SCHEMA from '@jupyterlab/settingregistry/lib/plugin-schema.json';

// ajv 8 checks no format unless ajv-formats is added, and the registry adds none: a schema's
// `format` is an annotation there. Keep it one here too (this copy of the library is bundled
// into this extension only; nobody else sees the change).
for (const name of Object.keys(cfFormats)) {
  delete (cfFormats as Record<string, unknown>)[name];
}

type AnySchema = { [key: string]: any } | boolean;
type IError = ISchemaValidator.IError;

/** Keywords whose cfworker error only announces the errors of a subschema that follow it. */
const WRAPPERS = new Set([
  '$ref',
  '$recursiveRef',
  'properties',
  'patternProperties',
  'additionalProperties',
  'items',
  'prefixItems',
  'additionalItems',
  'allOf',
  'dependentSchemas',
  'dependencies',
  'propertyNames',
  'contains',
  'unevaluatedProperties',
  'unevaluatedItems'
]);

/** A JSON pointer segment, unescaped. */
function unescapeSegment(segment: string): string {
  return decodeURIComponent(segment).replace(/~1/g, '/').replace(/~0/g, '~');
}

function segments(location: string): string[] {
  const pointer = location.replace(/^#/, '');
  return pointer === '' ? [] : pointer.slice(1).split('/').map(unescapeSegment);
}

function escapeSegment(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A local reference (`#/definitions/x`) resolved in `root`; undefined for anything else. */
function resolveLocalRef(root: AnySchema, ref: string): [AnySchema, string] | undefined {
  if (!ref.startsWith('#')) {
    return undefined;
  }
  let node: any = root;
  for (const segment of segments(ref)) {
    if (node === null || typeof node !== 'object' || !(segment in node)) {
      return undefined;
    }
    node = node[segment];
  }
  return [node, ref === '#' ? '#' : ref];
}

/**
 * Walk cfworker's keyword location (where a `$ref` keyword stands for the referenced schema)
 * through the schema: returns ajv's schemaPath (the path inside the referenced schema, as ajv
 * reports it) and the schema object holding the keyword.
 */
function locate(root: AnySchema, keywordLocation: string): [string, any, string] {
  const parts = segments(keywordLocation);
  const keyword = parts.pop() ?? '';
  let node: any = root;
  let path = '#';
  for (const segment of parts) {
    if (segment === '$ref' && node && typeof node.$ref === 'string') {
      const target = resolveLocalRef(root, node.$ref);
      if (target) {
        [node, path] = target;
        continue;
      }
    }
    node = node && typeof node === 'object' ? node[segment] : undefined;
    path += '/' + escapeSegment(segment);
  }
  return [`${path}/${escapeSegment(keyword)}`, node ?? {}, keyword];
}

function instancePath(location: string): string {
  return segments(location)
    .map(s => '/' + escapeSegment(s))
    .join('');
}

/** ajv 8's message and params for a failed keyword (ajv/lib/vocabularies/*). */
function ajvWording(
  keyword: string,
  parent: any,
  unit: OutputUnit
): [string, ReadonlyJSONObject] {
  const value = parent ? parent[keyword] : undefined;
  switch (keyword) {
    case 'type': {
      const type = Array.isArray(value) ? value.join(',') : String(value);
      return [`must be ${type}`, { type }];
    }
    case 'required': {
      const missing = /required property "(.*)"\.$/.exec(unit.error)?.[1] ?? '';
      return [`must have required property '${missing}'`, { missingProperty: missing }];
    }
    case 'enum':
      return ['must be equal to one of the allowed values', { allowedValues: value }];
    case 'const':
      return ['must be equal to constant', { allowedValue: value }];
    case 'minimum':
      return [`must be >= ${value}`, { comparison: '>=', limit: value }];
    case 'maximum':
      return [`must be <= ${value}`, { comparison: '<=', limit: value }];
    case 'exclusiveMinimum':
      return [`must be > ${value}`, { comparison: '>', limit: value }];
    case 'exclusiveMaximum':
      return [`must be < ${value}`, { comparison: '<', limit: value }];
    case 'multipleOf':
      return [`must be multiple of ${value}`, { multipleOf: value }];
    case 'minLength':
      return [`must NOT have fewer than ${value} characters`, { limit: value }];
    case 'maxLength':
      return [`must NOT have more than ${value} characters`, { limit: value }];
    case 'minItems':
      return [`must NOT have fewer than ${value} items`, { limit: value }];
    case 'maxItems':
      return [`must NOT have more than ${value} items`, { limit: value }];
    case 'minProperties':
      return [`must NOT have fewer than ${value} properties`, { limit: value }];
    case 'maxProperties':
      return [`must NOT have more than ${value} properties`, { limit: value }];
    case 'pattern':
      return [`must match pattern "${value}"`, { pattern: value }];
    case 'uniqueItems':
      return ['must NOT have duplicate items', {}];
    case 'anyOf':
      return ['must match a schema in anyOf', {}];
    case 'oneOf':
      return ['must match exactly one schema in oneOf', { passingSchemas: null }];
    case 'not':
      return ['must NOT be valid', {}];
    case 'if':
      return ['must match "then" schema', { failingKeyword: 'then' }];
    case 'false':
      return ['boolean schema is false', {}];
    default:
      return [unit.error, {}];
  }
}

/**
 * cfworker's output units as ajv's errors. cfworker reports a failed subschema as a wrapper
 * unit ("Property "x" does not match schema.") followed by the subschema's own units; ajv
 * reports only the latter, except `additionalProperties: false`, which ajv reports on the
 * object with the offending property in params.
 */
export function toAjvErrors(
  root: AnySchema,
  units: OutputUnit[],
  verbose = false
): IError[] {
  const errors: IError[] = [];
  for (let i = 0; i < units.length; i++) {
    const unit = units[i];
    const next = units[i + 1];
    if (unit.keyword === 'additionalProperties' && next && next.keyword === 'false') {
      const property = /^Property "(.*)" does not match/.exec(unit.error)?.[1] ?? '';
      const [schemaPath, parent] = locate(root, unit.keywordLocation);
      errors.push({
        instancePath: instancePath(unit.instanceLocation),
        schemaPath,
        keyword: 'additionalProperties',
        params: { additionalProperty: property },
        message: 'must NOT have additional properties',
        ...(verbose ? { parentSchema: parent } : {})
      });
      i++;
      continue;
    }
    if (WRAPPERS.has(unit.keyword) && next) {
      continue;
    }
    const [schemaPath, parent, keyword] = locate(root, unit.keywordLocation);
    const [message, params] = ajvWording(keyword, parent, unit);
    errors.push({
      instancePath: instancePath(unit.instanceLocation),
      schemaPath,
      keyword,
      params,
      message,
      ...(verbose ? { parentSchema: parent } : {})
    });
  }
  return errors;
}

function isPlainObject(value: unknown): value is JSONObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * ajv's `useDefaults`: fill `data` in place with the `default` of every property (and of every
 * array-form `items` entry) that is missing, then descend into the values present, through local
 * `$ref`s and `allOf` (ajv does not apply defaults under anyOf, oneOf or not, nor here).
 */
export function populateDefaults(
  schema: AnySchema,
  data: JSONValue | undefined,
  root: AnySchema = schema,
  depth = 0
): void {
  if (typeof schema !== 'object' || schema === null || depth > 64) {
    return;
  }
  if (typeof schema.$ref === 'string') {
    const target = resolveLocalRef(root, schema.$ref);
    if (target) {
      populateDefaults(target[0], data, root, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf)) {
    for (const sub of schema.allOf) {
      populateDefaults(sub, data, root, depth + 1);
    }
  }
  if (isPlainObject(data)) {
    const properties = isPlainObject(schema.properties) ? schema.properties : {};
    for (const [name, sub] of Object.entries(properties)) {
      if (
        data[name] === undefined &&
        isPlainObject(sub) &&
        (sub as any).default !== undefined
      ) {
        data[name] = JSONExt.deepCopy((sub as any).default);
      }
    }
    for (const [name, value] of Object.entries(data)) {
      if (name in properties) {
        populateDefaults(properties[name] as AnySchema, value, root, depth + 1);
        continue;
      }
      let matched = false;
      if (isPlainObject(schema.patternProperties)) {
        for (const [pattern, sub] of Object.entries(schema.patternProperties)) {
          if (new RegExp(pattern, 'u').test(name)) {
            matched = true;
            populateDefaults(sub as AnySchema, value, root, depth + 1);
          }
        }
      }
      if (!matched && isPlainObject(schema.additionalProperties)) {
        populateDefaults(schema.additionalProperties, value, root, depth + 1);
      }
    }
  } else if (Array.isArray(data)) {
    if (Array.isArray(schema.items)) {
      schema.items.forEach((sub: any, index: number) => {
        if (data.length === index && isPlainObject(sub) && sub.default !== undefined) {
          data.push(JSONExt.deepCopy(sub.default));
        }
        populateDefaults(sub, data[index], root, depth + 1);
      });
    } else if (isPlainObject(schema.items)) {
      for (const item of data) {
        populateDefaults(schema.items, item, root, depth + 1);
      }
    }
  }
}

/** One schema compiled for cfworker: validate data and return ajv-shaped errors. */
export class Interpreted {
  /**
   * Draft 7 (JupyterLab's schemas say so; ajv's default). `allErrors`: collect every error,
   * like ajv's option of that name; without it, stop at the first. `verbose`: add
   * `parentSchema` to each error, like ajv's option of that name.
   */
  constructor(
    readonly schema: AnySchema,
    readonly allErrors = false,
    readonly verbose = false
  ) {
    this._validator = new Validator(schema as Schema, '7', !allErrors);
  }

  errors(data: unknown): IError[] | null {
    const result = this._validator.validate(data);
    return result.valid ? null : toAjvErrors(this.schema, result.errors, this.verbose);
  }

  private _validator: Validator;
}

/** The plugin schema every settings schema must satisfy, and the draft-07 meta-schema. */
const pluginSchema = new Interpreted(PLUGIN_SCHEMA as unknown as AnySchema);
const metaSchema = new Interpreted(DRAFT_07 as unknown as AnySchema);

/**
 * ISchemaValidator without code generation, a drop-in for DefaultSchemaValidator (same
 * arguments, same early returns, same error shape).
 */
export class InterpretingSchemaValidator implements ISchemaValidator {
  validateData(plugin: ISettingRegistry.IPlugin, populate = true): IError[] | null {
    let compiled = this._schemas.get(plugin.id);
    if (!compiled || compiled.schema !== plugin.schema) {
      if (plugin.schema.type !== 'object') {
        const keyword = 'schema';
        const message =
          `Setting registry schemas' root-level type must be ` +
          `'object', rejecting type: ${plugin.schema.type}`;
        return [{ instancePath: 'type', keyword, schemaPath: '', message }];
      }
      const errors = this._addSchema(plugin.id, plugin.schema);
      if (errors) {
        return errors;
      }
      compiled = this._schemas.get(plugin.id)!;
    }

    // Parse the raw commented JSON into a user map.
    let user: JSONObject;
    try {
      user = json5.parse(plugin.raw) as JSONObject;
    } catch (error: any) {
      if (error instanceof SyntaxError) {
        return [{ instancePath: '', keyword: 'syntax', schemaPath: '', message: error.message }];
      }
      const { column, description } = error;
      const line = error.lineNumber;
      return [
        {
          instancePath: '',
          keyword: 'parse',
          schemaPath: '',
          message: `${description} (line ${line} column ${column})`
        }
      ];
    }

    const userErrors = compiled.errors(user);
    if (userErrors) {
      return userErrors;
    }

    // Copy the user data before merging defaults into composite map.
    const composite = JSONExt.deepCopy(user);
    populateDefaults(compiled.schema, composite);
    const compositeErrors = compiled.errors(composite);
    if (compositeErrors) {
      return compositeErrors;
    }

    if (populate) {
      plugin.data = { composite, user };
    }
    return null;
  }

  private _addSchema(id: string, schema: ISettingRegistry.ISchema): IError[] | null {
    const errors = pluginSchema.errors(schema) ?? metaSchema.errors(schema);
    if (errors) {
      return errors;
    }
    this._schemas.set(id, new Interpreted(schema as unknown as AnySchema));
    return null;
  }

  private _schemas = new Map<string, Interpreted>();
}
