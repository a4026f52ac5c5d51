/*
 * hardened-server: an @rjsf/validator-ajv8 that generates no code.
 *
 * JupyterLab's form views (the Settings editor's, the notebook metadata form) validate with
 * @rjsf/validator-ajv8, whose AJV8Validator compiles every schema with `new Function`: without
 * 'unsafe-eval' each form shows an EvalError instead of its fields. JupyterLab shares that
 * package through Module Federation (requiredVersion ^5.13.4, not a singleton), and a consumer
 * takes the highest version offered in the share scope. package.json's
 * `jupyterlab.sharedPackages` offers this module under that name at version 5.999.0, so every
 * consumer, core or extension, gets it instead of ajv's.
 *
 * It implements rjsf's ValidatorType like AJV8Validator (@rjsf/validator-ajv8 5.14.3,
 * src/validator.ts, Apache-2.0) with the schema interpreted (./validator.ts) and its ajv
 * options reproduced: allErrors and verbose (parentSchema, for titles in messages). The
 * processing of raw errors is rjsf's own (processRawValidationErrors.ts, copied below); ajv's
 * formats (ajv-formats) are not checked, as in the setting registry.
 */

import type {
  CustomValidator,
  ErrorSchema,
  ErrorTransformer,
  FormContextType,
  RJSFSchema,
  RJSFValidationError,
  StrictRJSFSchema,
  UiSchema,
  ValidationData,
  ValidatorType
} from '@rjsf/utils';
import {
  createErrorHandler,
  getDefaultFormState,
  getUiOptions,
  PROPERTIES_KEY,
  toErrorList,
  toErrorSchema,
  unwrapErrorHandler,
  validationDataMerge
} from '@rjsf/utils';
import { Interpreted } from './validator';

type RawError = {
  instancePath: string;
  keyword: string | string[];
  params?: any;
  schemaPath: string;
  parentSchema?: any;
  message?: string;
};

/** lodash.get over a dotted path, enough for uiSchema lookups. */
function get(object: any, path: string | string[]): any {
  const parts = Array.isArray(path) ? path : path.split('.').filter(Boolean);
  let node = object;
  for (const part of parts) {
    if (node === null || node === undefined) {
      return undefined;
    }
    node = node[part];
  }
  return node;
}

/** rjsf's transformRJSFValidationErrors (processRawValidationErrors.ts), unchanged. */
function transformErrors(errors: RawError[], uiSchema?: UiSchema): RJSFValidationError[] {
  return errors.map(e => {
    const { instancePath, keyword, params = {}, schemaPath, parentSchema } = e;
    let message = e.message ?? '';
    let property = instancePath.replace(/\//g, '.');
    let stack = `${property} ${message}`.trim();
    if ('missingProperty' in params) {
      property = property ? `${property}.${params.missingProperty}` : params.missingProperty;
      const currentProperty: string = params.missingProperty;
      const uiTitle = getUiOptions(get(uiSchema, property.replace(/^\./, ''))).title;
      if (uiTitle) {
        message = message.replace(currentProperty, uiTitle);
      } else {
        const parentTitle = get(parentSchema, [PROPERTIES_KEY, currentProperty, 'title']);
        if (parentTitle) {
          message = message.replace(currentProperty, parentTitle);
        }
      }
      stack = message;
    } else {
      const uiTitle = getUiOptions(get(uiSchema, property.replace(/^\./, ''))).title;
      if (uiTitle) {
        stack = `'${uiTitle}' ${message}`.trim();
      } else if (parentSchema?.title) {
        stack = `'${parentSchema.title}' ${message}`.trim();
      }
    }
    return {
      name: keyword as string,
      property,
      message,
      params,
      stack,
      schemaPath
    };
  });
}

export class InterpretingValidator<
  T = any,
  S extends StrictRJSFSchema = RJSFSchema,
  F extends FormContextType = any
> implements ValidatorType<T, S, F>
{
  /** @deprecated as in AJV8Validator: use toErrorList from @rjsf/utils. */
  toErrorList(errorSchema?: ErrorSchema<T>, fieldPath: string[] = []) {
    return toErrorList<T>(errorSchema, fieldPath);
  }

  rawValidation<Result = any>(
    schema: S,
    formData?: T
  ): { errors?: Result[]; validationError?: Error } {
    try {
      const errors = this._compiled(schema).errors(formData);
      return { errors: (errors ?? undefined) as unknown as Result[] | undefined };
    } catch (error) {
      return { errors: undefined, validationError: error as Error };
    }
  }

  validateFormData(
    formData: T | undefined,
    schema: S,
    customValidate?: CustomValidator<T, S, F>,
    transform?: ErrorTransformer<T, S, F>,
    uiSchema?: UiSchema<T, S, F>
  ): ValidationData<T> {
    const raw = this.rawValidation<RawError>(schema, formData);
    const invalidSchemaError = raw.validationError;
    let errors = transformErrors(raw.errors ?? [], uiSchema as UiSchema);
    if (invalidSchemaError) {
      errors = [...errors, { stack: invalidSchemaError.message }];
    }
    if (typeof transform === 'function') {
      errors = transform(errors, uiSchema);
    }
    let errorSchema = toErrorSchema<T>(errors);
    if (invalidSchemaError) {
      errorSchema = {
        ...errorSchema,
        $schema: { __errors: [invalidSchemaError.message] }
      } as ErrorSchema<T>;
    }
    if (typeof customValidate !== 'function') {
      return { errors, errorSchema };
    }
    const newFormData = getDefaultFormState<T, S, F>(
      this,
      schema,
      formData,
      schema,
      true
    ) as T;
    const errorHandler = customValidate(
      newFormData,
      createErrorHandler<T>(newFormData),
      uiSchema
    );
    const userErrorSchema = unwrapErrorHandler<T>(errorHandler);
    return validationDataMerge<T>({ errors, errorSchema }, userErrorSchema);
  }

  /** `schema` may refer (`#/definitions/...`) into `rootSchema`, as in AJV8Validator. */
  isValid(schema: S, formData: T | undefined, rootSchema: S): boolean {
    try {
      const root = rootSchema as any;
      const combined =
        schema === rootSchema
          ? schema
          : ({
              ...(schema as any),
              definitions: { ...root?.definitions, ...(schema as any).definitions },
              $defs: { ...root?.$defs, ...(schema as any).$defs }
            } as S);
      return new Interpreted(combined as any).errors(formData) === null;
    } catch (e) {
      console.warn('Error encountered validating schema:', e);
      return false;
    }
  }

  private _compiled(schema: S): Interpreted {
    let compiled = this._cache.get(schema as object);
    if (!compiled) {
      compiled = new Interpreted(schema as any, true, true);
      this._cache.set(schema as object, compiled);
    }
    return compiled;
  }

  private _cache = new WeakMap<object, Interpreted>();
}

/** As @rjsf/validator-ajv8's customizeValidator; its ajv options have no meaning here. */
export function customizeValidator<
  T = any,
  S extends StrictRJSFSchema = RJSFSchema,
  F extends FormContextType = any
>(): ValidatorType<T, S, F> {
  return new InterpretingValidator<T, S, F>();
}

/** Precompiled ajv validators are code; there is nothing to interpret. */
export function createPrecompiledValidator(): never {
  throw new Error(
    'hardened-server: precompiled ajv validators are not available (no code generation)'
  );
}

export default customizeValidator();
