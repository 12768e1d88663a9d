"""pytest plugin of pynenc-wf-testing (installed as the module ``pytest_pynenc_wf``)."""
