"""oslo.i18n integration for user-facing messages."""

import oslo_i18n

_translators = oslo_i18n.TranslatorFactory(domain='datera_glance')

# The primary translation function using the well-known name "_"
_ = _translators.primary
