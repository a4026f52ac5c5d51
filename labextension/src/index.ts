/*
 * hardened-server-settings: the setting registry of JupyterLab and Notebook 7 without code
 * generation.
 *
 * This plugin is @jupyterlab/apputils-extension:settings (apputils-extension 4.6.4,
 * src/settingsplugin.ts) with one change: the SettingRegistry gets a validator that interprets
 * the schemas (./validator.ts) instead of ajv's DefaultSchemaValidator, which compiles them with
 * `new Function` and so needs 'unsafe-eval' in script-src. The same connector (ISettingConnector
 * when provided, else SettingConnector over app.serviceManager.settings), the same plugin list
 * (the active ones this application has) and the default timeout. package.json's
 * `jupyterlab.disabledExtensions` disables the core plugin, so exactly one provides
 * ISettingRegistry; hardened-server puts this extension on the labextensions path.
 */

import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import {
  ISettingConnector,
  ISettingRegistry,
  SettingRegistry
} from '@jupyterlab/settingregistry';
import { SettingConnector } from './settingconnector';
import { InterpretingSchemaValidator } from './validator';

export const settingsPlugin: JupyterFrontEndPlugin<ISettingRegistry> = {
  id: 'hardened-server-settings:settings',
  autoStart: true,
  provides: ISettingRegistry,
  optional: [ISettingConnector],
  description:
    'Provides the setting registry, validating settings without code generation (no eval).',
  activate: async (
    app: JupyterFrontEnd,
    settingsConnector: ISettingConnector | null
  ): Promise<ISettingRegistry> => {
    const { isDisabled } = PageConfig.Extension;
    const connector =
      settingsConnector ?? new SettingConnector(app.serviceManager.settings);

    // As the core plugin: only plugins this application has, so that another lab-based
    // application's schemas next to ours do not leak in.
    const registry = new SettingRegistry({
      connector,
      plugins: (await connector.list('active')).values.filter(value =>
        app.hasPlugin(value.id)
      ),
      validator: new InterpretingSchemaValidator()
    });

    // As the core plugin: after restore, load the schemas of plugins that were not in the
    // registry, or their settings never become available.
    void app.restored.then(async () => {
      const plugins = await connector.list('ids');
      plugins.ids.forEach(async id => {
        if (!app.hasPlugin(id) || isDisabled(id) || id in registry.plugins) {
          return;
        }
        try {
          await registry.load(id);
        } catch (error) {
          console.warn(`Settings failed to load for (${id})`, error);
          if (!app.isPluginActivated(id)) {
            console.warn(
              `If 'jupyter.lab.transform=true' in the plugin schema, this ` +
                `may happen if {autoStart: false} in (${id}) or if it is ` +
                `one of the deferredExtensions in page config.`
            );
          }
        }
      });
    });

    return registry;
  }
};

export default [settingsPlugin];
